"""Configuration: the one door through which the environment enters.

Every variable siyu reads is listed in ``VARIABLES`` (name, default, meaning); the README's
table is generated from the same list by ``siyu config``. Settings are read at call time
(``current()``), never at import, because Chalice's test client sets environment variables
only for the duration of an invocation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent

# name -> (default, meaning). The default is what a local run gets; production stages set
# the secrets in .chalice/config.json or the function's environment.
VARIABLES: dict[str, tuple[str, str]] = {
    "SIYU_STAGE": ("local", "Stage name: local, dev or prod."),
    "SIYU_TABLE_PREFIX": ("siyu-local-", "Prefix of every DynamoDB table name."),
    "SIYU_DYNAMODB_ENDPOINT": ("", "DynamoDB endpoint URL; empty means the AWS default."),
    "SIYU_REGION": ("ap-east-1", "AWS region of the tables (falls back to AWS_REGION)."),
    "SIYU_WECHAT_TOKEN": ("siyu-local-token", "Official account callback Token."),
    "SIYU_WECHAT_AES_KEY": ("", "Official account EncodingAESKey (43 chars); empty = plain mode only."),
    "SIYU_WECHAT_APP_ID": ("wx0000000000local", "Official account AppID (receive id in safe mode)."),
    "SIYU_WECHAT_APP_SECRET": ("", "Official account AppSecret (outbound API calls)."),
    "SIYU_WECHAT_ALLOW_PLAIN": ("false", "Accept plain-mode POSTs, whose body is unsigned (docs/wechat.md §0)."),
    "SIYU_WECOM_TOKEN": ("siyu-local-wecom-token", "WeCom callback Token."),
    "SIYU_WECOM_AES_KEY": ("", "WeCom EncodingAESKey (43 chars); required for /wechat/work."),
    "SIYU_WECOM_CORP_ID": ("ww0000000000local", "WeCom CorpID (receive id of callbacks)."),
    "SIYU_ORDERS_HMAC_SECRET": ("", "Shared secret of the order webhook's HMAC-SHA256 header."),
    "SIYU_TILL_KEYS": (
        "",
        "The till API's keys, per store: S001=<key>|<next key>,S002=<key> (two while tills rotate); empty = closed.",
    ),
    "SIYU_MEMBER_CODE_KEY": (
        "",
        "Key of the member codes shown at the till: <key>|<previous key> (seal with the first); empty = closed.",
    ),
    "SIYU_COUPON_SECRET": ("siyu-local-coupon-secret", "Secret from which coupon codes are derived."),
    "SIYU_PRIVACY_SECRET": (
        "siyu-local-privacy-secret",
        "Key of the hash that replaces an erased member's id (siyu member erase); keep it stable.",
    ),
    "SIYU_WECHAT_API_BASE": ("https://api.weixin.qq.com", "WeChat API base URL (make run points it at the fake)."),
    "SIYU_WECOM_API_BASE": ("https://qyapi.weixin.qq.com", "WeCom API base URL (make run points it at the fake)."),
    "SIYU_WECOM_SECRET": ("", "WeCom app secret for customer-contact sends."),
    "SIYU_OPS_ROBOT_KEY": ("", "Key of the WeCom group robot that receives ops alerts."),
    "SIYU_ROBOT_KEYS": ("", "More robots by name, for store alerts: S001=<key>,S002=<key> (default: the ops robot)."),
    "SIYU_OUTBOX_QUEUE": ("off", "Where recorded messages go to be sent: an SQS queue URL, local, or off."),
    "SIYU_HTTP_TIMEOUT_S": ("5", "Read timeout of calls to WeChat (seconds)."),
    "SIYU_ADMIN_TOKEN": ("", "Bearer token of the admin routes outside AWS; empty = admin closed."),
    "SIYU_CONSOLE_LOGIN_URL": (
        "",
        "The console's Cognito hosted login (…/login?client_id=…&response_type=token); empty = token login.",
    ),
    "SIYU_RULES_DIR": ("", "Directory of the rule files; empty = the bundled rules/."),
    "SIYU_RULES_CACHE_SECONDS": ("30", "How long a container keeps the active rule version before re-reading."),
    "SIYU_MAX_BODY_BYTES": ("65536", "Largest webhook body accepted (bytes)."),
    "SIYU_TIMESTAMP_TOLERANCE_S": ("300", "Largest clock difference accepted on signed requests."),
    "SIYU_EVENT_TTL_DAYS": ("180", "How long received events are kept for replay and backtests."),
    "SIYU_LOG_LEVEL": ("INFO", "Log level of the structured JSON logs."),
}


@dataclass(frozen=True)
class Settings:
    stage: str
    table_prefix: str
    dynamodb_endpoint: str | None
    region: str
    wechat_token: str
    wechat_aes_key: str
    wechat_app_id: str
    wechat_app_secret: str
    wechat_allow_plain: bool
    wecom_token: str
    wecom_aes_key: str
    wecom_corp_id: str
    orders_hmac_secret: str
    till_keys: str
    member_code_key: str
    coupon_secret: str
    privacy_secret: str
    wechat_api_base: str
    wecom_api_base: str
    wecom_secret: str
    ops_robot_key: str
    robot_keys: str
    outbox_queue: str
    http_timeout_s: float
    admin_token: str
    console_login_url: str
    rules_dir: Path
    rules_cache_seconds: float
    max_body_bytes: int
    timestamp_tolerance_s: int
    event_ttl_days: int
    log_level: str

    def robot_key(self, name: str) -> str:
        """The key of the robot called ``name`` in SIYU_ROBOT_KEYS; the ops robot otherwise."""
        for pair in self.robot_keys.split(","):
            robot, sep, key = pair.strip().partition("=")
            if sep and robot == name and key:
                return key
        return self.ops_robot_key


def _get(env: dict[str, str], name: str) -> str:
    return env.get(name, VARIABLES[name][0])


def _default_rules_dir() -> Path:
    bundled = PROJECT_DIR / "chalicelib" / "bundled_rules"
    return bundled if bundled.is_dir() else PROJECT_DIR / "rules"


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    rules_dir = _get(env, "SIYU_RULES_DIR")
    return Settings(
        stage=_get(env, "SIYU_STAGE"),
        table_prefix=_get(env, "SIYU_TABLE_PREFIX"),
        dynamodb_endpoint=_get(env, "SIYU_DYNAMODB_ENDPOINT") or None,
        region=env.get("SIYU_REGION") or env.get("AWS_REGION") or VARIABLES["SIYU_REGION"][0],
        wechat_token=_get(env, "SIYU_WECHAT_TOKEN"),
        wechat_aes_key=_get(env, "SIYU_WECHAT_AES_KEY"),
        wechat_app_id=_get(env, "SIYU_WECHAT_APP_ID"),
        wechat_app_secret=_get(env, "SIYU_WECHAT_APP_SECRET"),
        wechat_allow_plain=_get(env, "SIYU_WECHAT_ALLOW_PLAIN").lower() in ("1", "true", "yes"),
        wecom_token=_get(env, "SIYU_WECOM_TOKEN"),
        wecom_aes_key=_get(env, "SIYU_WECOM_AES_KEY"),
        wecom_corp_id=_get(env, "SIYU_WECOM_CORP_ID"),
        orders_hmac_secret=_get(env, "SIYU_ORDERS_HMAC_SECRET"),
        till_keys=_get(env, "SIYU_TILL_KEYS"),
        member_code_key=_get(env, "SIYU_MEMBER_CODE_KEY"),
        coupon_secret=_get(env, "SIYU_COUPON_SECRET"),
        privacy_secret=_get(env, "SIYU_PRIVACY_SECRET"),
        wechat_api_base=_get(env, "SIYU_WECHAT_API_BASE").rstrip("/"),
        wecom_api_base=_get(env, "SIYU_WECOM_API_BASE").rstrip("/"),
        wecom_secret=_get(env, "SIYU_WECOM_SECRET"),
        ops_robot_key=_get(env, "SIYU_OPS_ROBOT_KEY"),
        robot_keys=_get(env, "SIYU_ROBOT_KEYS"),
        outbox_queue=_get(env, "SIYU_OUTBOX_QUEUE"),
        http_timeout_s=float(_get(env, "SIYU_HTTP_TIMEOUT_S")),
        admin_token=_get(env, "SIYU_ADMIN_TOKEN"),
        console_login_url=_get(env, "SIYU_CONSOLE_LOGIN_URL"),
        rules_dir=Path(rules_dir) if rules_dir else _default_rules_dir(),
        rules_cache_seconds=float(_get(env, "SIYU_RULES_CACHE_SECONDS")),
        max_body_bytes=int(_get(env, "SIYU_MAX_BODY_BYTES")),
        timestamp_tolerance_s=int(_get(env, "SIYU_TIMESTAMP_TOLERANCE_S")),
        event_ttl_days=int(_get(env, "SIYU_EVENT_TTL_DAYS")),
        log_level=_get(env, "SIYU_LOG_LEVEL"),
    )


# Outside the local stage these must be set explicitly: their defaults are public.
REQUIRED_OUTSIDE_LOCAL = ("SIYU_WECHAT_TOKEN", "SIYU_COUPON_SECRET", "SIYU_WECOM_TOKEN", "SIYU_PRIVACY_SECRET")


def current() -> Settings:
    """Settings from the process environment, read now."""
    return load()


def missing_secrets(env: dict[str, str] | None = None) -> list[str]:
    """Secrets a non-local stage runs without (they would fall back to public defaults)."""
    env = dict(os.environ if env is None else env)
    if _get(env, "SIYU_STAGE") == "local":
        return []
    return [name for name in REQUIRED_OUTSIDE_LOCAL if not env.get(name)]


assert len(fields(Settings)) == len(VARIABLES), "every variable maps to one setting"

"""``make run``: the whole of siyu on this machine, on 127.0.0.1 only.

- Amazon's DynamoDB Local (``siyu/local/dynamodb.py``) on 127.0.0.1:8001, its tables in a
  SQLite file under ``.siyu/``, so members and coupons survive a restart, even a ``kill -9``;
  with ``SIYU_DYNAMODB_ENDPOINT`` set, that DynamoDB instead and none of ours;
- the tables, created if missing;
- the same Chalice app, served on http://127.0.0.1:8000 by Chalice's local server;
- every ``@app.schedule`` handler, run on its schedule.

Configuration is the environment (README lists every variable); anything unset gets the safe
local default below, and the effective values are written to ``.siyu/local.env`` so the
``siyu`` CLI reads the same tables.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException

from chalicelib import logs, settings
from chalicelib.clock import SystemClock
from chalicelib.delivery.queue import LocalWorker
from chalicelib.state.binding import create_tables
from siyu.local.dynamodb import DynamoDBLocal, DynamoDBLocalError
from siyu.local.fake_wechat import FakeWeChat
from siyu.local.timers import Timers, jobs_of

STATE_DIR = settings.PROJECT_DIR / ".siyu"
ENV_FILE = STATE_DIR / "local.env"

# Safe local defaults: fixed development keys (never used outside this machine), fake AWS
# credentials for DynamoDB Local, and a known admin token printed at start.
LOCAL_DEFAULTS = {
    "SIYU_STAGE": "local",
    "SIYU_TABLE_PREFIX": "siyu-local-",
    "SIYU_WECHAT_AES_KEY": "siyuLocalDevelopmentKeyForSafeModeOnly00000",
    "SIYU_WECOM_AES_KEY": "siyuLocalDevelopmentKeyForWeComCallbacks000",
    "SIYU_ORDERS_HMAC_SECRET": "siyu-local-orders-secret",
    "SIYU_TILL_KEYS": "S001=siyu-local-till-S001,S002=siyu-local-till-S002,S003=siyu-local-till-S003",
    "SIYU_MEMBER_CODE_KEY": "siyu-local-member-code-key",
    "SIYU_ADMIN_TOKEN": "siyu-local-admin-token",
    "SIYU_OUTBOX_QUEUE": "local",
    "SIYU_OPS_ROBOT_KEY": "siyu-local-ops-robot",
    "SIYU_WECOM_SECRET": "siyu-local-wecom-secret",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "ap-east-1",
}


@dataclass
class Stack:
    """The app, its timers, worker and fake WeChat; DynamoDB is the caller's (its endpoint is
    ``SIYU_DYNAMODB_ENDPOINT``)."""

    server: object
    server_thread: threading.Thread
    timers: Timers
    url: str
    wechat: FakeWeChat | None
    worker: LocalWorker

    def stop(self) -> None:
        self.worker.stop()
        if self.wechat is not None:
            self.wechat.stop()
        self.timers.stop()
        self.server.shutdown()  # type: ignore[attr-defined]
        self.server.server.server_close()  # type: ignore[attr-defined]


def apply_local_defaults(environ: dict[str, str] = os.environ) -> bool:  # type: ignore[assignment]
    """Fill in local defaults; returns True when WeChat is to be faked (no real secret given)."""
    fake = not environ.get("SIYU_WECHAT_APP_SECRET")
    if fake:
        environ["SIYU_WECHAT_APP_SECRET"] = "siyu-local-app-secret"
    for name, value in LOCAL_DEFAULTS.items():
        environ.setdefault(name, value)
    return fake


def start(
    host: str = "127.0.0.1",
    port: int = 8000,
    timer_tick: float = 1.0,
    wechat_port: int | None = 8002,
    background: bool = True,
) -> Stack:
    """Start every piece but DynamoDB, which the caller has started (or points at) and names in
    ``SIYU_DYNAMODB_ENDPOINT``; the caller owns the environment (set it before calling). With a
    ``wechat_port`` the fake WeChat starts and the app's API base URLs point at it. Without
    ``background`` the timers and the outbox worker are built but not started: the caller runs
    them (``siyu simulate`` does, on its virtual clock)."""
    from chalice.cli.factory import CLIFactory
    from chalice.local import ChaliceRequestHandler, LocalChalice, LocalDevServer, ThreadedHTTPServer

    # socketserver's listen backlog is 5: a burst of deliveries (WeChat's retries, a load test)
    # would be reset at the door. WeChat's own servers are not so patient with us either.
    ThreadedHTTPServer.request_queue_size = 512
    # The handler writes the head and the body of an answer apart; with Nagle's algorithm on, the
    # body waits for the client's delayed ACK of the head: 40 ms on every answer.
    ChaliceRequestHandler.disable_nagle_algorithm = True

    create_tables(settings.current())
    wechat = None
    if wechat_port is not None:
        wechat = FakeWeChat(host, wechat_port).start()
        os.environ["SIYU_WECHAT_API_BASE"] = wechat.url
        os.environ["SIYU_WECOM_API_BASE"] = wechat.url

    factory = CLIFactory(project_dir=str(settings.PROJECT_DIR))
    config = factory.create_config_obj(chalice_stage_name="local")
    for name, value in config.environment_variables.items():
        os.environ.setdefault(name, value)
    app = config.chalice_app
    if isinstance(app, LocalChalice):  # already prepared by an earlier start in this process
        server = LocalDevServer(app, config, host, port)
    else:
        server = factory.create_local_server(app, config, host, port)
    thread = threading.Thread(target=server.server.serve_forever, name="local-app", daemon=True)
    thread.start()
    bound_host, bound_port = server.server.server_address[:2]

    app_module = sys.modules["app"]
    timers = Timers(jobs_of(app_module, app), SystemClock(), timer_tick)
    worker = LocalWorker(app_module.send_outbox_messages)
    if background:
        timers.start()
        worker.start()
    return Stack(server, thread, timers, f"http://{bound_host}:{bound_port}", wechat, worker)


def write_env_file(path: Path | None = None) -> None:
    names = [*settings.VARIABLES, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"]
    lines = [f"{name}={os.environ[name]}" for name in names if name in os.environ]
    (path or ENV_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def banner(stack: Stack, rules: str, dynamodb: DynamoDBLocal | None) -> str:
    from chalicelib.console.auth import local_logins
    from chalicelib.rules.loader import active

    s = settings.current()
    logins = "\n                             ".join(local_logins(s, [store.id for store in active(s).stores.stores]))
    fake_note = "  (the fake WeChat: GET /_fake/received shows what it got)" if stack.wechat else ""
    store = f"DynamoDB Local, tables kept in {STATE_DIR}" if dynamodb else "SIYU_DYNAMODB_ENDPOINT"
    return f"""
siyu local stack is up (stage {s.stage}; state in {STATE_DIR})

  Official account callback  {stack.url}/wechat/oa     token={s.wechat_token} app_id={s.wechat_app_id}
                                                         EncodingAESKey={s.wechat_aes_key}
  WeCom callback             {stack.url}/wechat/work   token={s.wecom_token} corp_id={s.wecom_corp_id}
                                                         EncodingAESKey={s.wecom_aes_key}
  Order webhook              {stack.url}/hooks/orders  HMAC secret={s.orders_hmac_secret}
  Admin                      {stack.url}/admin/members/<openid>
                             Authorization: Bearer {s.admin_token}
  Ops console (运营台)       {stack.url}/console   log in with a token:
                             {logins}
  DynamoDB                   {s.dynamodb_endpoint}  tables {s.table_prefix}*  ({store})
  Timers                     {", ".join(job.name for job in stack.timers.jobs)}
  Outbox                     sent by an in-process queue worker; `.venv/bin/siyu outbox` lists messages
  WeChat API                 {s.wechat_api_base}{fake_note}
  Rules                      {rules}

  Look at a member:          .venv/bin/siyu member show <openid>
  Watch a whole chain live:  .venv/bin/siyu simulate --stores 3 --members 2000 --days 35 --seed 7
                             (its own fresh stack on other ports, 35 virtual days; smaller and
                             quicker: --members 300 --days 14)
  Stop with Ctrl-C; state is kept. Start afresh: rm -rf .siyu (with the stack stopped)
"""


def sync_rules() -> str:
    """First start: publish rules/ as v1. Later starts: say whether rules/ differs from the active
    version (the developer publishes deliberately, as ops would)."""
    from chalicelib.clock import SystemClock
    from chalicelib.errors import InvalidRules
    from chalicelib.rules import loader, versions

    directory = settings.current().rules_dir
    files = loader.read_dir(directory)
    pointer = versions.active_pointer()
    if pointer is None:
        try:
            result = versions.publish(
                files,
                note=f"initial rules from {directory.name}/ (make run)",
                author="make run",
                now=SystemClock().now(),
            )
        except InvalidRules as exc:
            return "rules/ has problems, nothing published:\n    " + "\n    ".join(map(str, exc.problems))
        return f"published {directory.name}/ as v{result.version} (the active version)"
    active = int(pointer.version)
    if versions.get(active).content_hash != loader.content_hash(files):
        return (
            f"active v{active}; {directory.name}/ differs from it — see what would change with "
            f"`siyu rules preview {directory.name}/`, then `siyu rules publish {directory.name}/ --note …`"
        )
    return f"active v{active} (same as {directory.name}/)"


def start_dynamodb(port: int) -> DynamoDBLocal | None:
    """DynamoDB Local on ``port`` keeping its tables in .siyu/, unless SIYU_DYNAMODB_ENDPOINT
    names another DynamoDB (a container, real AWS): then None, and that one is used."""
    if os.environ.get("SIYU_DYNAMODB_ENDPOINT"):
        return None
    if (STATE_DIR / "dynamodb.jsonl").exists():
        print(
            f"note: {STATE_DIR / 'dynamodb.jsonl'} is the journal of the stack before DynamoDB Local and is no "
            "longer read: this stack's state starts afresh in DynamoDB Local (delete the file to drop this note)",
            flush=True,
        )
    dynamodb = DynamoDBLocal(db_path=STATE_DIR, port=port, log_path=STATE_DIR / "dynamodb-local.log").start()
    os.environ["SIYU_DYNAMODB_ENDPOINT"] = dynamodb.endpoint
    return dynamodb


def serve(dynamodb: DynamoDBLocal | None, stack: Stack, stopping: threading.Event) -> int:
    """Run until asked to stop (0) or until our DynamoDB Local is gone (1): no half-running stack."""
    while not stopping.wait(0.5):
        if dynamodb is not None and not dynamodb.alive():
            logs.log("local_stack.dynamodb_gone", logging.ERROR, endpoint=dynamodb.endpoint)
            print(
                f"DynamoDB Local ({dynamodb.endpoint}) has stopped; stopping the stack. Its last output:\n"
                f"{dynamodb.output() or '(nothing)'}",
                file=sys.stderr,
                flush=True,
            )
            return 1
    return 0


def main() -> int:
    STATE_DIR.mkdir(exist_ok=True)
    fake = apply_local_defaults()
    logs.configure(settings.current().log_level)  # this process's own logs are JSON too
    port = int(os.environ.get("SIYU_LOCAL_PORT", "8000"))
    dynamodb_port = int(os.environ.get("SIYU_LOCAL_DYNAMODB_PORT", "8001"))
    wechat_port = int(os.environ.get("SIYU_LOCAL_WECHAT_PORT", "8002")) if fake else None
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    dynamodb = stack = None
    status = 1
    try:
        dynamodb = start_dynamodb(dynamodb_port)
        stack = start(port=port, wechat_port=wechat_port)
        write_env_file()
        print(banner(stack, sync_rules(), dynamodb), flush=True)
        status = serve(dynamodb, stack, stopping)
    except DynamoDBLocalError as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
    except (BotoCoreError, PynamoDBException) as exc:
        endpoint = os.environ.get("SIYU_DYNAMODB_ENDPOINT")
        print(f"make run: the DynamoDB at {endpoint} did not answer ({exc}); stopping.", file=sys.stderr, flush=True)
    finally:
        if status == 0:
            print("stopping…", flush=True)
        if stack is not None:
            stack.stop()
        if dynamodb is not None:
            dynamodb.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``make run``: the whole of siyu on this machine, on 127.0.0.1 only.

- an embedded DynamoDB (moto, in-process) whose writes are journaled under ``.siyu/`` and
  replayed on start, so members and coupons survive a restart;
- the tables, created if missing;
- the same Chalice app, served on http://127.0.0.1:8000 by Chalice's local server;
- every ``@app.schedule`` handler, run on its schedule.

Configuration is the environment (README lists every variable); anything unset gets the safe
local default below, and the effective values are written to ``.siyu/local.env`` so the
``siyu`` CLI reads the same tables.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from chalicelib import settings
from chalicelib.clock import SystemClock
from chalicelib.delivery.queue import LocalWorker
from chalicelib.local.dynamodb import LocalDynamoDB
from chalicelib.local.fake_wechat import FakeWeChat
from chalicelib.local.timers import Timers, jobs_of
from chalicelib.state.binding import create_tables

STATE_DIR = settings.PROJECT_DIR / ".siyu"
ENV_FILE = STATE_DIR / "local.env"

# Safe local defaults: fixed development keys (never used outside this machine), fake AWS
# credentials for the embedded DynamoDB, and a known admin token printed at start.
LOCAL_DEFAULTS = {
    "SIYU_STAGE": "local",
    "SIYU_TABLE_PREFIX": "siyu-local-",
    "SIYU_WECHAT_AES_KEY": "siyuLocalDevelopmentKeyForSafeModeOnly00000",
    "SIYU_WECOM_AES_KEY": "siyuLocalDevelopmentKeyForWeComCallbacks000",
    "SIYU_ORDERS_HMAC_SECRET": "siyu-local-orders-secret",
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
    dynamodb: LocalDynamoDB | None  # None: the caller's in-process moto (``siyu simulate``)
    server: object
    server_thread: threading.Thread
    timers: Timers
    url: str
    replayed: int
    wechat: FakeWeChat | None
    worker: LocalWorker

    def stop(self) -> None:
        self.worker.stop()
        if self.wechat is not None:
            self.wechat.stop()
        self.timers.stop()
        self.server.shutdown()  # type: ignore[attr-defined]
        self.server.server.server_close()  # type: ignore[attr-defined]
        if self.dynamodb is not None:
            self.dynamodb.stop()


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
    dynamodb_port: int | None = 8001,
    journal: Path | None = None,
    timer_tick: float = 1.0,
    wechat_port: int | None = 8002,
    background: bool = True,
) -> Stack:
    """Start every piece; the caller owns the environment (set it before calling). With a
    ``wechat_port`` the fake WeChat starts and the app's API base URLs point at it. Without a
    ``dynamodb_port`` no DynamoDB server starts: the caller has moto in-process. Without
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

    dynamodb, replayed = None, 0
    if dynamodb_port is not None:  # else the caller has moto in this process (mock_aws)
        dynamodb = LocalDynamoDB(host, dynamodb_port, journal)
        replayed = dynamodb.start()
        os.environ["SIYU_DYNAMODB_ENDPOINT"] = dynamodb.endpoint
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
    return Stack(dynamodb, server, thread, timers, f"http://{bound_host}:{bound_port}", replayed, wechat, worker)


def write_env_file(path: Path = ENV_FILE) -> None:
    names = [*settings.VARIABLES, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"]
    lines = [f"{name}={os.environ[name]}" for name in names if name in os.environ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def banner(stack: Stack, rules: str) -> str:
    from chalicelib.console.auth import local_logins
    from chalicelib.rules.loader import active

    s = settings.current()
    logins = "\n                             ".join(local_logins(s, [store.id for store in active(s).stores.stores]))
    fake_note = "  (the fake WeChat: GET /_fake/received shows what it got)" if stack.wechat else ""
    return f"""
siyu local stack is up (stage {s.stage}; state in {STATE_DIR}, {stack.replayed} writes replayed)

  Official account callback  {stack.url}/wechat/oa     token={s.wechat_token} app_id={s.wechat_app_id}
                                                         EncodingAESKey={s.wechat_aes_key}
  WeCom callback             {stack.url}/wechat/work   token={s.wecom_token} corp_id={s.wecom_corp_id}
                                                         EncodingAESKey={s.wecom_aes_key}
  Order webhook              {stack.url}/hooks/orders  HMAC secret={s.orders_hmac_secret}
  Admin                      {stack.url}/admin/members/<openid>
                             Authorization: Bearer {s.admin_token}
  Ops console (运营台)       {stack.url}/console   log in with a token:
                             {logins}
  Embedded DynamoDB          {stack.dynamodb.endpoint}  tables {s.table_prefix}*
  Timers                     {", ".join(job.name for job in stack.timers.jobs)}
  Outbox                     sent by an in-process queue worker; `.venv/bin/siyu outbox` lists messages
  WeChat API                 {s.wechat_api_base}{fake_note}
  Rules                      {rules}

  Look at a member:          .venv/bin/siyu member show <openid>
  Watch a whole chain live:  .venv/bin/siyu simulate --stores 3 --members 2000 --days 35 --seed 7
                             (its own fresh stack on other ports, 35 virtual days; smaller and
                             quicker: --members 300 --days 14)
  Stop with Ctrl-C; state is kept. Start afresh: rm -rf .siyu
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


def main() -> None:
    STATE_DIR.mkdir(exist_ok=True)
    fake = apply_local_defaults()
    port = int(os.environ.get("SIYU_LOCAL_PORT", "8000"))
    dynamodb_port = int(os.environ.get("SIYU_LOCAL_DYNAMODB_PORT", "8001"))
    wechat_port = int(os.environ.get("SIYU_LOCAL_WECHAT_PORT", "8002")) if fake else None
    stack = start(port=port, dynamodb_port=dynamodb_port, journal=STATE_DIR / "dynamodb.jsonl", wechat_port=wechat_port)
    write_env_file()
    print(banner(stack, sync_rules()), flush=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    print("stopping…", flush=True)
    stack.stop()


if __name__ == "__main__":
    main()

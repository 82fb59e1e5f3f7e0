"""Shared fixtures: test settings, moto DynamoDB with real PynamoDB calls, a fixed clock,
the Chalice test client, and a live local stack (HTTP on DynamoDB Local, for concurrency tests)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from chalicelib import runtime, settings
from chalicelib.clock import FixedClock
from chalicelib.rules import loader
from siyu.local.dynamodb import DynamoDBLocal

# The keys of docs/wechat.md §2.2 (V3 for the official account, V5 for WeCom).
TEST_ENV = {
    "SIYU_STAGE": "local",
    "SIYU_RULES_CACHE_SECONDS": "0",
    "SIYU_TABLE_PREFIX": "siyu-test-",
    "SIYU_REGION": "ap-east-1",
    "SIYU_DYNAMODB_ENDPOINT": "",
    "SIYU_WECHAT_TOKEN": "pamtest",
    "SIYU_WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "SIYU_WECHAT_APP_ID": "wxb11529c136998cb6",
    "SIYU_WECOM_TOKEN": "123456",
    "SIYU_WECOM_AES_KEY": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "SIYU_WECOM_CORP_ID": "wx49f0ab532d5d035a",
    "SIYU_ORDERS_HMAC_SECRET": "test-orders-secret",
    "SIYU_TILL_KEYS": "S001=till-key-s001|till-key-s001-next,S002=till-key-s002",
    "SIYU_MEMBER_CODE_KEY": "test-member-code-key|test-member-code-key-before",
    "SIYU_ADMIN_TOKEN": "test-admin-token",
    "SIYU_COUPON_SECRET": "test-coupon-secret",
    "SIYU_WECHAT_APP_SECRET": "test-app-secret",
    "SIYU_WECOM_SECRET": "test-wecom-secret",
    "SIYU_OPS_ROBOT_KEY": "test-robot",
    "SIYU_OUTBOX_QUEUE": "off",
    "SIYU_HTTP_TIMEOUT_S": "1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-east-1",
}

START = datetime(2026, 11, 23, 2, 0, 0, tzinfo=UTC)  # 10:00 in Shanghai


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--plain-moto",
        action="store_true",
        help="run the in-process tier on moto without siyu's patch of it (tests/moto_patches.py)",
    )


@pytest.fixture(scope="session")
def moto_patched(request: pytest.FixtureRequest) -> bool:
    """Whether tests/moto_patches.py is in force (not with --plain-moto, nor on another moto)."""
    from tests import moto_patches

    return not request.config.getoption("--plain-moto") and moto_patches.install()


@pytest.fixture(autouse=True)
def no_local_stack_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The CLI reads .siyu/local.env of a developer's running stack; tests never do."""
    from siyu import cli

    monkeypatch.setattr(cli, "LOCAL_ENV", tmp_path / "absent.env")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> settings.Settings:
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SIYU_RULES_DIR", raising=False)
    loader.clear_cache()
    return settings.current()


@pytest.fixture
def clock() -> Iterator[FixedClock]:
    fixed = FixedClock(START)
    previous = runtime.use_clock(fixed)
    yield fixed
    runtime.use_clock(previous)


@pytest.fixture
def aws(env: settings.Settings, moto_patched: bool) -> Iterator[settings.Settings]:
    from moto import mock_aws

    from chalicelib.state import binding

    # The models keep their connections from test to test (moto intercepts every botocore client,
    # whenever it was made): each of PynamoDB's per-model connections costs a botocore client,
    # ~0.15 s to make, and there is no supported way to share one (pynamodb/PynamoDB issue #1245).
    with mock_aws():
        binding.create_tables(env)
        yield env


@pytest.fixture
def wechat(monkeypatch: pytest.MonkeyPatch):
    """A fake WeChat on 127.0.0.1 that the sender and the identity work talk to."""
    from chalicelib.delivery import api
    from siyu.local.fake_wechat import FakeWeChat

    fake = FakeWeChat().start()
    monkeypatch.setenv("SIYU_WECHAT_API_BASE", fake.url)
    monkeypatch.setenv("SIYU_WECOM_API_BASE", fake.url)
    api.clear_memory()
    yield fake
    api.clear_memory()
    fake.stop()


@pytest.fixture
def siyu_logs():
    """The structured logs (logger ``siyu.log``), as written."""
    import io
    import logging

    from chalicelib import logs

    logs.configure("INFO")
    logger = logging.getLogger("siyu.log")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs._JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def client(aws: settings.Settings, clock: FixedClock):
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local") as test_client:
        yield test_client


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """One DynamoDB Local, in memory, on an ephemeral 127.0.0.1 port, for every end-to-end test
    of the session (each makes its own tables), started by the first test that needs it. It is
    stopped when the session ends, failed or interrupted; if pytest itself is killed, the Java
    process sees its standard input close and exits (siyu/local/dynamodb.py)."""
    with DynamoDBLocal() as running:
        yield running


LIVE_PREFIX = "siyu-e2e-"


def _empty_tables() -> None:
    """Delete every item of the bound tables (a few dozen after a test): cheaper than new tables,
    whose every model would need a new PynamoDB connection and botocore client (~0.15 s each)."""
    from chalicelib.state.models import MODELS
    from chalicelib.store.db import key_names

    for model in MODELS:
        names = [name for name in key_names(model) if name]
        with model.batch_write() as batch:
            for item in model.scan(attributes_to_get=names):
                batch.delete(item)


@pytest.fixture
def live(env: settings.Settings, dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch):
    """The local stack (the app over HTTP, timers, outbox worker, fake WeChat) on ephemeral
    loopback ports, on DynamoDB Local with no lock in front of it, so concurrency is real; its
    tables (one set for the session) start empty. Uses the system clock: HTTP requests run in
    server threads."""
    from siyu.local import stack as local_stack

    monkeypatch.setenv("SIYU_TABLE_PREFIX", LIVE_PREFIX)
    monkeypatch.setenv("SIYU_DYNAMODB_ENDPOINT", dynamodb_local.endpoint)
    monkeypatch.setenv("SIYU_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("SIYU_OUTBOX_QUEUE", "local")
    monkeypatch.setenv("SIYU_WECHAT_API_BASE", "")
    monkeypatch.setenv("SIYU_WECOM_API_BASE", "")
    from chalicelib.state import binding

    binding.create_tables(settings.current())  # once a session; then only looked at
    _empty_tables()
    running = local_stack.start(port=0, timer_tick=0.2, wechat_port=0)
    yield running
    running.stop()

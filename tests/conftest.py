"""Shared fixtures: test settings, moto DynamoDB with real PynamoDB calls, a fixed clock,
the Chalice test client, and a live local stack (HTTP, for concurrency tests)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from chalicelib import runtime, settings
from chalicelib.clock import FixedClock
from chalicelib.rules import loader

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


@pytest.fixture(autouse=True)
def no_local_stack_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The CLI reads .siyu/local.env of a developer's running stack; tests never do."""
    from chalicelib import cli

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
def aws(env: settings.Settings) -> Iterator[settings.Settings]:
    from moto import mock_aws

    from chalicelib.local import moto_patches
    from chalicelib.state import binding

    moto_patches.install()
    with mock_aws():
        binding._bound = None
        binding.create_tables(env)
        yield env
        binding._bound = None


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


@pytest.fixture
def live(env: settings.Settings, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The local stack (embedded DynamoDB + the app over HTTP) on ephemeral loopback ports,
    with its own tables. Uses the system clock: HTTP requests run in server threads."""
    import uuid

    from chalicelib.local import stack as local_stack

    monkeypatch.setenv("SIYU_TABLE_PREFIX", f"siyu-e2e-{uuid.uuid4().hex[:8]}-")
    monkeypatch.setenv("SIYU_DYNAMODB_ENDPOINT", "")
    monkeypatch.setenv("SIYU_LOG_LEVEL", "WARNING")
    from chalicelib.state import binding

    binding._bound = None
    monkeypatch.setenv("SIYU_OUTBOX_QUEUE", "local")
    monkeypatch.setenv("SIYU_WECHAT_API_BASE", "")
    monkeypatch.setenv("SIYU_WECOM_API_BASE", "")
    running = local_stack.start(
        port=0, dynamodb_port=0, journal=tmp_path / "dynamodb.jsonl", timer_tick=0.2, wechat_port=0
    )
    yield running
    running.stop()
    binding._bound = None

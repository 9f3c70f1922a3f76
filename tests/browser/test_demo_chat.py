"""The demo chat in a real browser: Debian's Chromium (/usr/bin/chromium, `make install`
installs it) driven by Playwright (playwright-core, tests/js/package.json), two users in two
browser contexts on two gateway nodes (``--auth dev``) that share one SQLite store, one Redis
prefix and one fresh vhost, with the persist worker and the translation worker over a
private apertium-apy.

The scenario (tests/js/demo_browser.mjs) runs once for the module, in about half a minute;
each test below asserts one part of it. It asks this module to stop and start node b in the
middle, over its stdin/stdout. Screenshots go to var/test-artifacts/browser/ (gitignored),
with the processes' logs in its logs/ and, for a step that fails, a screenshot of each page;
`test_screenshots_are_saved` prints their paths and what each shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.procs import WorkerProcess
from tests.support import rabbit
from tests.support.gateway_proc import GatewayProcess, free_port
from tests.support.process import ROOT, ManagedProcess

pytestmark = pytest.mark.timeout(300)

CHROMIUM = Path("/usr/bin/chromium")
JS_DIR = ROOT / "tests" / "js"
ARTIFACTS = ROOT / "var" / "test-artifacts" / "browser"
SCENARIO_TIMEOUT = 240.0


@dataclass
class Scenario:
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    screenshots: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    output: list[str] = field(default_factory=list)

    def step(self, name: str) -> dict[str, Any]:
        found = self.steps.get(name)
        assert found is not None, f"step {name!r} did not run:\n" + "\n".join(self.output[-40:])
        assert found["ok"], f"{name}: {found.get('error')}"
        return found


class TranslatorProcess(ManagedProcess):
    """``python -m workers translate`` with Apertium, its health server on a free port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = env

    def start(self, log_dir: Path) -> None:
        env = {
            **self.env,
            "STOMPGATE_TRANSLATE_PROVIDER": "apertium",
            "STOMPGATE_WORKER_METRICS_HOST": "127.0.0.1",
            "STOMPGATE_WORKER_METRICS_PORT": str(self.port),
        }
        self.spawn(
            [sys.executable, "-m", "workers", "translate"],
            env,
            log_dir / "worker-translate.log",
            f"http://127.0.0.1:{self.port}/healthz",
            60.0,  # the language detector loads its models first
            "translation worker",
        )


def run_scenario(options: dict[str, Any], node_b: GatewayProcess, log_dir: Path) -> Scenario:
    """Runs demo_browser.mjs, answering its requests to stop and start node b."""
    scenario = Scenario()
    started = time.monotonic()
    proc = subprocess.Popen(
        ["node", "demo_browser.mjs", json.dumps(options)],
        cwd=JS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    timer = threading.Timer(SCENARIO_TIMEOUT, proc.kill)
    timer.start()
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        for line in proc.stdout:
            scenario.output.append(line.rstrip())
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line of the browser's own
            if "step" in event:
                scenario.steps[event["step"]] = event
            elif "screenshot" in event:
                scenario.screenshots.append((event["screenshot"], event["what"]))
            elif event.get("request") == "stop-b":
                node_b.stop()
                proc.stdin.write(json.dumps({"done": "stop-b"}) + "\n")
                proc.stdin.flush()
            elif event.get("request") == "start-b":
                node_b.start(log_dir)
                proc.stdin.write(json.dumps({"done": "start-b"}) + "\n")
                proc.stdin.flush()
        proc.wait(10)
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    scenario.seconds = time.monotonic() - started
    return scenario


@pytest.fixture(scope="module")
def scenario(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `make install` installs Debian's chromium")
    if not (JS_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is missing: `make install` installs tests/js/package.json")
    if not (ROOT / "gateway" / "static" / "app" / "index.html").exists():
        pytest.fail("the demo page is not built: `make install` builds web/")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    tmp = tmp_path_factory.mktemp("browser")
    log_dir = tmp / "logs"
    log_dir.mkdir()
    vhost = rabbit.create_vhost()
    amqp_url = rabbit.amqp_url(vhost)
    prefix = f"stompgate-test:{uuid.uuid4().hex[:12]}:"
    store_url = f"sqlite:///{tmp / 'messages.sqlite3'}"
    env = {
        "STOMPGATE_REDIS_URL": redis_url,
        "STOMPGATE_REDIS_PREFIX": prefix,
        "STOMPGATE_STORE": store_url,
        "STOMPGATE_LOG_LEVEL": "INFO",
    }
    started: list[ManagedProcess] = []
    apertium: Any = None
    try:
        worker = WorkerProcess(amqp_url=amqp_url, store_url=store_url)
        worker.start(log_dir)
        started.append(worker)
        from tests.translate.apertium_proc import ApertiumProcess

        apertium = ApertiumProcess()
        apertium.start(log_dir / "apertium-apy.log")
        translator = TranslatorProcess(
            {
                **env,
                "STOMPGATE_AMQP_URL": amqp_url,
                "STOMPGATE_TRANSLATE_APERTIUM_URL": apertium.url,
            }
        )
        translator.start(log_dir)
        started.append(translator)
        nodes = [
            GatewayProcess(amqp_url=amqp_url, node_id=f"browser-{name}", env=env)
            for name in ("a", "b")
        ]
        for node in nodes:
            node.start(log_dir)
            started.append(node)
        options = {
            "a": nodes[0].http_url,
            "b": nodes[1].http_url,
            "artifacts": str(ARTIFACTS),
        }
        yield run_scenario(options, nodes[1], log_dir)
    finally:
        for proc in reversed(started):
            proc.stop()
        if apertium is not None:
            apertium.stop()
        shutil.copytree(log_dir, ARTIFACTS / "logs", dirs_exist_ok=True)  # beside the shots
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        rabbit.delete_vhost(vhost)


def test_a_bad_demo_login_shows_one_error_and_opens_no_socket(scenario: Scenario) -> None:
    scenario.step("bad demo login: one error, no WebSocket")


def test_two_users_on_two_nodes_sign_in_create_a_room_and_chat(scenario: Scenario) -> None:
    scenario.step("sign in as alice on node a and bob on node b")
    scenario.step("alice creates a room with bob; bob sees it")
    scenario.step("chat both ways")


def test_typing_is_shown(scenario: Scenario) -> None:
    scenario.step("typing is shown to the other")


def test_seen_by(scenario: Scenario) -> None:
    scenario.step("seen by: alice sees bob read her message")


def test_unread_badge_of_a_one_to_one_chat(scenario: Scenario) -> None:
    assert scenario.step("unread badge on a one-to-one chat")["detail"] == {"unread": "1"}


def test_presence_dots(scenario: Scenario) -> None:
    scenario.step("presence: alice sees bob online")


def test_translation_toggle(scenario: Scenario) -> None:
    scenario.step("translation toggle")


def test_a_reload_keeps_the_sign_in_and_catches_up(scenario: Scenario) -> None:
    scenario.step("reload: the sign-in is kept and what was missed is caught up")


def test_a_node_restarts_and_the_chat_goes_on(scenario: Scenario) -> None:
    found = scenario.step("node b restarts: bob reconnects, catches up and keeps chatting")
    assert "Connection lost" in found["detail"]["status_during_restart"]


def test_an_over_long_message_is_refused_before_sending_and_kept(scenario: Scenario) -> None:
    scenario.step("an over-long message is refused before sending, and kept")


def test_a_refused_stomp_login_is_not_retried(scenario: Scenario) -> None:
    found = scenario.step(
        "a refused STOMP login: one error, no retry loop, back to the sign-in form"
    )
    assert "Access refused for user 'bob'" in found["detail"]["alert"]


def test_older_messages_load_on_demand(scenario: Scenario) -> None:
    found = scenario.step("older messages load on demand (history API, keyset)")
    assert found["detail"]["first_page"] == 50
    assert found["detail"]["all"] > 50


def test_removal_from_a_room_is_one_error_and_no_retry(scenario: Scenario) -> None:
    scenario.step("bob is removed from the room: one error, the room closes, the chat goes on")


def test_usable_at_390_px(scenario: Scenario) -> None:
    scenario.step("390 px wide: usable, nothing runs off the screen")


def test_accessibility(scenario: Scenario) -> None:
    scenario.step("accessibility: labels, roles, contrast, focus order")


def test_no_script_errors(scenario: Scenario) -> None:
    scenario.step("no script errors in the pages")


def test_screenshots_are_saved(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    scenario.step("screenshots of both users")
    assert len(scenario.screenshots) >= 9
    with capsys.disabled():
        print(f"\nbrowser scenario: {scenario.seconds:.1f} s; screenshots:")
        for path, what in scenario.screenshots:
            assert Path(path).stat().st_size > 1000
            print(f"  {path}  ({what})")
    assert scenario.seconds < SCENARIO_TIMEOUT

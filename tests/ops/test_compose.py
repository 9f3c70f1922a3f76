"""compose.yaml, deploy/nginx.conf and the Dockerfile, checked without a Docker engine.

Every STOMPGATE_* setting a service passes must be one the code it runs reads (the names come
from the settings code itself: scripts/config_reference.py), and the values must be ones the
settings accept, so a typo or a removed setting fails here. Every built-in worker has a
service; the gateways are health-checked on /readyz; nginx balances both without affinity
and upgrades WebSockets.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.auth.settings import AuthSettings
from gateway.settings import settings_from
from scripts.config_reference import read_names
from workers.notify.settings import NotifySettings
from workers.registry import BUILTIN
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
NGINX = (ROOT / "deploy" / "nginx.conf").read_text()
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+]([^}]*))?\}")
READ = read_names()
APPLY_READS = {"STOMPGATE_AMQP_URL"}  # rabbitmq/apply.py


def command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command", [])
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def interpolated(value: str) -> str:
    """What compose makes of the value with nothing set in the shell: the defaults."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def readers(service: dict[str, Any]) -> set[str] | None:
    """The STOMPGATE_* names the process of this service reads (None: not our image)."""
    argv = command(service)
    if argv[:3] == ["python", "-m", "gateway"]:
        return set(READ["gateway"]) | set(READ["auth"])
    if argv[:3] == ["python", "-m", "workers"]:
        names = set(READ["worker"])
        extra = {"translate": READ["translate"], "notify": READ["notify"]}
        return names | set(extra.get(argv[3] if argv[3:] else "", ()))
    if argv[:2] == ["python", "rabbitmq/apply.py"]:
        return APPLY_READS
    return None


OURS = {name: s for name, s in SERVICES.items() if readers(s) is not None}


def test_the_services_are_all_there() -> None:
    assert {"rabbitmq", "rabbitmq-setup", "mongodb", "redis", "nginx"} <= set(SERVICES)
    gateways = [n for n, s in OURS.items() if command(s)[:3] == ["python", "-m", "gateway"]]
    assert sorted(gateways) == ["gateway-1", "gateway-2"]
    workers = {
        command(s)[3] for s in OURS.values() if command(s)[:3] == ["python", "-m", "workers"]
    }
    assert set(BUILTIN) <= workers, "every built-in worker runs in compose.yaml"


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_setting_passed_is_one_the_code_reads(name: str) -> None:
    service = OURS[name]
    allowed = readers(service)
    assert allowed is not None
    env = environment(service)
    passed = {k for k in env if k.startswith("STOMPGATE_")}
    assert passed, f"{name} passes no settings"
    assert passed - allowed == set(), f"{name} passes settings no code of it reads"
    for value in env.values():  # ${STOMPGATE_...} taken from the shell: real names too
        for variable in INTERPOLATION.findall(value):
            if variable[0].startswith("STOMPGATE_"):
                assert variable[0] in allowed, f"{name}: ${{{variable[0]}}}"


@pytest.mark.parametrize("name", sorted(OURS))
def test_the_values_are_accepted_by_the_settings(name: str) -> None:
    service = OURS[name]
    env = {k: interpolated(v) for k, v in environment(service).items()}
    argv = command(service)
    if argv[:3] == ["python", "-m", "gateway"]:
        settings = settings_from({}, env)
        assert settings.http_port == 15680  # what nginx, the health check and compose use
        AuthSettings.from_env(env, mode=settings.auth)
        assert AuthSettings.from_env(env).limits.max_connections_per_ip == 0  # nginx limits
        jwt_env = {**env, "STOMPGATE_AUTH": "jwt", "STOMPGATE_JWKS_URL": "https://idp.example/k"}
        assert AuthSettings.from_env(jwt_env).jwt is not None  # production: only these to set
    elif argv[:3] == ["python", "-m", "workers"]:
        worker = WorkerSettings.from_env(env)
        assert worker.store_url.startswith("mongodb://")
        if argv[3:4] == ["notify"]:
            NotifySettings.from_env(env)


def test_gateways_are_health_checked_on_readyz_and_drain_before_sigkill() -> None:
    for name in ("gateway-1", "gateway-2"):
        service = SERVICES[name]
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        grace = int(str(service["stop_grace_period"]).rstrip("s"))
        drain = float(environment(service)["STOMPGATE_DRAIN_TIMEOUT"])
        assert grace > drain
        assert environment(service)["STOMPGATE_NODE_ID"] == name  # distinct node ids
    assert set(SERVICES["nginx"]["depends_on"]) == {"gateway-1", "gateway-2"}
    assert all(
        dep["condition"] == "service_healthy" for dep in SERVICES["nginx"]["depends_on"].values()
    )


def test_nginx_balances_both_nodes_without_affinity_and_upgrades_websockets() -> None:
    http = re.search(r"upstream stompgate_http \{(.*?)\}", NGINX, re.S)
    websockets = re.search(r"upstream stompgate_ws \{(.*?)\}", NGINX, re.S)
    stomp = re.search(r"upstream stompgate_stomp \{(.*?)\}", NGINX, re.S)
    assert http is not None
    assert websockets is not None
    assert stomp is not None
    for upstream in (http, websockets):
        assert re.findall(r"server (\S+):(\d+)", upstream.group(1)) == [
            ("gateway-1", "15680"),
            ("gateway-2", "15680"),
        ]
    # Upgrades never reuse a kept-alive connection: the lean WebSocket path serves only a
    # socket's first request.
    assert not re.search(r"^\s*keepalive", websockets.group(1), re.M)
    assert re.findall(r"server (\S+):(\d+)", stomp.group(1)) == [
        ("gateway-1", "61613"),
        ("gateway-2", "61613"),
    ]
    code = "\n".join(line.split("#")[0] for line in NGINX.splitlines())
    for affinity in ("ip_hash", "sticky", "hash "):
        assert affinity not in code
    ws = re.search(r"location /ws \{(.*?)\}", code, re.S)
    assert ws is not None
    assert "proxy_pass http://stompgate_ws;" in ws.group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in ws.group(1)
    assert "proxy_set_header Connection $connection_upgrade;" in ws.group(1)
    assert "proxy_http_version 1.1;" in ws.group(1)
    assert "proxy_next_upstream error timeout http_502 http_503;" in code
    mounted = [v for v in SERVICES["nginx"]["volumes"] if "nginx.conf" in v]
    assert mounted == ["./deploy/nginx.conf:/etc/nginx/nginx.conf:ro"]


def test_mounted_files_exist_and_the_dockerfile_copies_what_the_image_runs() -> None:
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
        if "build" in service:
            assert service["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = {
        part
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and not line.startswith("COPY --from=")
        for part in line.split()[1:-1]
    }
    assert {"gateway", "store", "workers", "schemas", "rabbitmq"} <= copied
    for source in copied:
        assert (ROOT / source).exists(), source

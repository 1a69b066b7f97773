"""Connection-level guards under a real server: 500s are answered, logged, counted and leave the
connection usable; oversized and stalled bodies are refused early (issue 17, items 9, 10, 14)."""

import http.client
import json
import logging
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from api.main import create_app
from core.config import Settings
from tests.paths import MODEL_DIR
from tests.reliability.live_server import serve

LIMIT = 1024 * 1024


class Boom(Exception):
    """A failure no handler knows: what any bug in a route looks like to the server."""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    data_dir: Path = tmp_path_factory.mktemp("live")
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'live.db'}",
        model_dir=MODEL_DIR,
        run_job_workers=False,
        max_request_bytes=LIMIT,
        request_body_idle_timeout_seconds=1.0,
    )
    app: FastAPI = create_app(settings)

    def boom() -> None:
        raise Boom("a bug")

    app.add_api_route("/test/boom", boom, methods=["GET"])
    # Before the web app's catch-all, which create_app made the last route.
    app.router.routes.insert(0, app.router.routes.pop())
    with serve(app) as address:
        yield address


def test_a_500_is_answered_logged_counted_and_keeps_the_connection(
    live: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    connection = http.client.HTTPConnection(*live, timeout=10)
    with caplog.at_level(logging.ERROR):
        connection.request("GET", "/test/boom", headers={"X-Request-ID": "probe-500-a"})
        response = connection.getresponse()
        body = json.loads(response.read())
    assert response.status == 500
    assert response.getheader("content-type") == "application/problem+json"
    assert response.getheader("x-request-id") == "probe-500-a"
    assert body["request_id"] == "probe-500-a" and "probe-500-a" in body["detail"]
    assert "Traceback" not in json.dumps(body)
    assert any("probe-500-a" in record.getMessage() and record.exc_info for record in caplog.records)

    # The same connection answers the next request.
    connection.request("GET", "/metrics")
    metrics = connection.getresponse()
    text = metrics.read().decode()
    assert metrics.status == 200
    assert 'shoebox_http_requests_total{method="GET",route="/test/boom",status="500"} 1' in text
    connection.close()


def test_a_generated_request_id_comes_back_and_a_forged_one_is_replaced(live: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*live, timeout=10)
    connection.request("GET", "/v1/photos/nope", headers={"X-Request-ID": "bad id <script>" + "x" * 100})
    response = connection.getresponse()
    body = json.loads(response.read())
    request_id = response.getheader("x-request-id")
    assert response.status == 401 and request_id and " " not in request_id
    assert body["request_id"] == request_id
    connection.close()


def _raw(live: tuple[str, int], head: str) -> socket.socket:
    sock = socket.create_connection(live, timeout=10)
    sock.sendall(head.encode())
    return sock


def _read_status(sock: socket.socket, timeout: float) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_a_declared_oversized_body_is_refused_before_it_is_sent(live: tuple[str, int]) -> None:
    sock = _raw(
        live,
        "POST /v1/photos HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {250 * 1024 * 1024}\r\n\r\n",
    )
    try:
        sock.sendall(b"--b\r\n")
        assert _read_status(sock, timeout=5) == 413
    finally:
        sock.close()


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(live: tuple[str, int]) -> None:
    sock = _raw(
        live,
        "POST /v1/photos HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
    )
    part_head = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    sock.sendall(b"%x\r\n%s\r\n" % (len(part_head), part_head))
    chunk = b"x" * 65536
    sent = 0
    try:
        while sent < 32 * LIMIT:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        assert _read_status(sock, timeout=5) == 413
        # Refused while reading: the answer came long before the body ended (socket buffers
        # on loopback hold a few megabytes, so "sent" overshoots the limit).
        assert sent < 32 * LIMIT
    finally:
        sock.close()


def test_a_stalled_body_times_out(live: tuple[str, int]) -> None:
    sock = _raw(
        live,
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
    )
    try:
        sock.sendall(b'{"type": ')
        started = time.monotonic()
        assert _read_status(sock, timeout=10) == 408
        assert time.monotonic() - started < 5
    finally:
        sock.close()


def test_metrics_show_library_figures_only_with_the_token(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'metrics.db'}",
        model_dir=MODEL_DIR,
        run_job_workers=False,
        metrics_token="scrape-secret",
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert scraped.status_code == 200 and "shoebox_photos" in scraped.text
    open_settings = settings.model_copy(update={"metrics_token": None})
    with TestClient(create_app(open_settings)) as client:
        scraped = client.get("/metrics")
        assert scraped.status_code == 200 and "shoebox_http_requests_total" in scraped.text
        assert "shoebox_photos" not in scraped.text and "shoebox_jobs" not in scraped.text

"""End-to-end: the Graph backend reaches the simulator through an HTTP CONNECT proxy."""

import pathlib
import sys

import pytest

from clawback_env import SAMPLE_FEED
from test_graph_backend import (  # noqa: F401  (pytest fixtures)
    MOVE_TO_JUNK, graph, make_clawback, pki, run_until_settled, sim, write_secret,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "sim" / "feed"))
import harness  # noqa: E402  (the proxy helpers)


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_graph_through_proxy(auth, graph, pki, tmp_path):
    proxy = harness.Proxy(tmp_path, auth)
    try:
        cb = make_clawback(tmp_path, graph, pki, MOVE_TO_JUNK)
        password = write_secret(tmp_path / "proxy-password", proxy.password + "\n")
        text = cb.config.read_text().replace(
            "[graph]\n",
            f"[graph]\nproxy = {proxy.url}\nproxy_user = {proxy.user}\n"
            f"proxy_password_file = {password}\nproxy_auth = {auth}\n",
        )
        cb.config.write_text(text)

        jobs, stderr = run_until_settled(cb, SAMPLE_FEED)
        tunnels = proxy.records()
    finally:
        proxy.stop()

    assert {job["state"] for job in jobs} == {"done"}, jobs
    assert tunnels, "no request went through the proxy"
    assert proxy.password not in stderr


def test_graph_wrong_proxy_password_is_temporary(graph, pki, tmp_path):
    proxy = harness.Proxy(tmp_path, "basic")
    try:
        cb = make_clawback(tmp_path, graph, pki, MOVE_TO_JUNK)
        password = write_secret(tmp_path / "proxy-password", "wrong-password\n")
        text = cb.config.read_text().replace(
            "[graph]\n",
            f"[graph]\nproxy = {proxy.url}\nproxy_user = {proxy.user}\n"
            f"proxy_password_file = {password}\nproxy_auth = basic\n",
        )
        cb.config.write_text(text)
        cb.run("replay", str(SAMPLE_FEED))
        jobs = cb.json_lines("jobs")
    finally:
        proxy.stop()

    assert graph.stats()["graph_requests"] == 0
    for job in jobs:
        assert job["state"] in {"retry_wait", "final_error"}, job
        assert "proxy" in job.get("error", "").lower() or "407" in job.get("error", ""), job

"""Helpers to run the Graph simulator (tests/sim/graph) from pytest.

make_test_ca() creates a throwaway CA and certificates with tests/sim/make_test_ca.sh;
GraphSim starts the simulator on a free loopback port and wraps its /_sim/ control API.
"""

import json
import os
import pathlib
import subprocess

import requests

SOURCE_DIR = pathlib.Path(os.environ.get("CLAWBACK_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
MAKE_TEST_CA = SOURCE_DIR / "tests" / "sim" / "make_test_ca.sh"
GRAPH_SIM = SOURCE_DIR / "tests" / "sim" / "graph" / "graph_sim.js"
# Seconds to wait for a simulator to print its port.
START_TIMEOUT = 20


def make_test_ca(directory, *client_names):
    """Create ca.pem, server.pem/key and NAME.pem/key for each client name in directory."""
    subprocess.run([str(MAKE_TEST_CA), str(directory), *client_names], check=True)
    return pathlib.Path(directory)


class GraphSim:
    """A running Graph simulator process and a client for its control API."""

    def __init__(self, ca_dir, fixture=None, args=()):
        ca_dir = pathlib.Path(ca_dir)
        self.ca = str(ca_dir / "ca.pem")
        command = ["node", str(GRAPH_SIM), "--cert", str(ca_dir / "server.pem"),
                   "--key", str(ca_dir / "server.key"), "--port", "0", *args]
        if fixture is not None:
            fixture_path = ca_dir / "graph-fixture.json"
            fixture_path.write_text(json.dumps(fixture))
            command += ["--fixture", str(fixture_path)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        line = self._read_first_line()
        self.port = json.loads(line)["port"]
        self.url = f"https://127.0.0.1:{self.port}"
        self.session = self.new_session()

    def _read_first_line(self):
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_TIMEOUT):
            self.process.kill()
            raise RuntimeError("graph simulator did not print its port in time")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"graph simulator exited with status {self.process.wait()}")
        return line

    def new_session(self):
        """Return a requests session that trusts the test CA and ignores the environment.

        With trust_env left on, REQUESTS_CA_BUNDLE would override the session's CA.
        """
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca
        return session

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def control(self, method, route, body=None):
        response = self.session.request(method, f"{self.url}/_sim/{route}", json=body, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"control {method} {route} failed: {response.status_code} {response.text}")
        return response.json()

    def load_fixture(self, fixture):
        return self.control("POST", "fixture", fixture)

    def set_faults(self, faults, append=False):
        return self.control("POST", "faults", {"faults": faults, "append": append})

    def configure(self, **settings):
        return self.control("POST", "config", settings)

    def state(self, mailbox=None):
        return self.control("GET", "state" + (f"?mailbox={mailbox}" if mailbox else ""))

    def stats(self):
        return self.control("GET", "stats")

    def log(self):
        return self.control("GET", "log")["entries"]

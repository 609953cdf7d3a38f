"""Helpers for the feed client end-to-end tests: build the probe, run the simulators.

The probe (feed_client_probe.c) is compiled against the static library of a
build tree: the folder of $CLAWBACK_BIN, else $CLAWBACK_BUILD_DIR, else the
newest build*/ folder under the source tree. A build made with
-DCLAWBACK_SANITIZE=ON gets the same sanitizer flags.
"""
import json
import os
import pathlib
import shlex
import signal
import subprocess
import time

HERE = pathlib.Path(__file__).resolve().parent
SOURCE_DIR = pathlib.Path(os.environ.get("CLAWBACK_SOURCE_DIR", HERE.parents[2]))
PYTHON = "/usr/bin/python3"
PKG_CONFIG_LIBS = "libcurl jansson sqlite3 libpcre2-8 inih libssl libcrypto libsystemd libxml-2.0"
FEED_PATH = "/email/siem/v1/websocket"
# Maximum wait for a condition a test expects. Failing tests end here, passing ones much sooner.
WAIT_SECONDS = 30


def build_dir():
    if os.environ.get("CLAWBACK_BIN"):
        return pathlib.Path(os.environ["CLAWBACK_BIN"]).resolve().parent
    if os.environ.get("CLAWBACK_BUILD_DIR"):
        return pathlib.Path(os.environ["CLAWBACK_BUILD_DIR"])
    libraries = sorted(SOURCE_DIR.glob("build*/libclawback_core.a"), key=lambda p: p.stat().st_mtime)
    if not libraries:
        raise RuntimeError("no build*/libclawback_core.a under %s: build the project first" % SOURCE_DIR)
    return libraries[-1].parent


def build_probe(out_dir):
    """Compiles feed_client_probe.c into out_dir and returns the binary's path."""
    build = build_dir()
    library = build / "libclawback_core.a"
    flags = []
    cache = build / "CMakeCache.txt"
    if cache.exists() and "CLAWBACK_SANITIZE:BOOL=ON" in cache.read_text():
        flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    libs = subprocess.run(["pkg-config", "--cflags", "--libs", *PKG_CONFIG_LIBS.split()],
                          check=True, capture_output=True, text=True).stdout
    binary = pathlib.Path(out_dir) / "feed_client_probe"
    command = ["cc", "-std=gnu11", "-D_GNU_SOURCE", "-DCLAWBACK_VERSION=\"test\"", *flags,
               "-I", str(SOURCE_DIR / "src"), "-o", str(binary), str(HERE / "feed_client_probe.c"),
               str(library), "-lwslay", *shlex.split(libs), "-lpthread", "-lm"]
    subprocess.run(command, check=True)
    return binary


def make_ca(out_dir):
    subprocess.run(["sh", str(SOURCE_DIR / "tests" / "sim" / "make_test_ca.sh"), str(out_dir)], check=True)
    return pathlib.Path(out_dir)


class Process:
    """A child process whose stdout starts with "READY <port>"."""

    def __init__(self, command, log_path, env=None):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError("%s did not start: %r (see %s)" % (command[1], line, log_path))
        self.port = int(line.split()[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def read_jsonl(path):
    path = pathlib.Path(path)
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        if line.endswith("}"):  # skips a line still being written
            lines.append(json.loads(line))
    return lines


class FeedSim:
    def __init__(self, tmp, ca, token="s3cret-token", channel="clawback-test", events=None,
                 generate=0, rate=0, scenario=None):
        self.tmp = pathlib.Path(tmp)
        self.token = token
        self.channel = channel
        self.record = self.tmp / "sim-record.jsonl"
        token_file = self.tmp / "sim-token"
        token_file.write_text(token + "\n")
        command = [PYTHON, str(HERE / "feed_sim.py"), "--cert", str(ca / "server.pem"),
                   "--key", str(ca / "server.key"), "--token-file", str(token_file),
                   "--channel", channel, "--record", str(self.record),
                   "--generate", str(generate), "--rate", str(rate)]
        if events:
            command += ["--events", str(events)]
        if scenario is not None:
            scenario_file = self.tmp / "scenario.json"
            scenario_file.write_text(json.dumps(scenario))
            command += ["--scenario", str(scenario_file)]
        self.process = Process(command, self.tmp / "sim.log")
        self.url = "wss://127.0.0.1:%d%s" % (self.process.port, FEED_PATH)

    def records(self, kind=None):
        return [r for r in read_jsonl(self.record) if kind is None or r["kind"] == kind]

    def stop(self):
        self.process.stop()


class Proxy:
    def __init__(self, tmp, auth, user="proxyuser", password="proxy-Passw0rd"):
        self.record = pathlib.Path(tmp) / ("proxy-%s.jsonl" % auth)
        self.user, self.password = user, password
        env = dict(os.environ)
        if auth == "ntlm":
            env["OPENSSL_CONF"] = str(HERE / "openssl-legacy.cnf")
        command = [PYTHON, str(HERE / "connect_proxy.py"), "--auth", auth, "--user", user,
                   "--password", password, "--record", str(self.record)]
        self.process = Process(command, pathlib.Path(tmp) / ("proxy-%s.log" % auth), env=env)
        self.url = "http://127.0.0.1:%d" % self.process.port

    def records(self, kind=None):
        return [r for r in read_jsonl(self.record) if kind is None or r["kind"] == kind]

    def stop(self):
        self.process.stop()


class Probe:
    """The feed client under test, printing JSON lines into a file."""

    def __init__(self, binary, tmp, sim, ca, token=None, extra=(), env=None, name="probe"):
        tmp = pathlib.Path(tmp)
        self.token_file = tmp / ("%s-token" % name)
        self.token_file.write_text((token if token is not None else sim.token) + "\n")
        self.output = tmp / ("%s.jsonl" % name)
        self.stderr_path = tmp / ("%s.log" % name)
        command = [str(binary), "--url", sim.url, "--channel", sim.channel, "--token-file", str(self.token_file),
                   "--ca-file", str(ca / "ca.pem"), *extra]
        self.out = open(self.output, "w")
        self.err = open(self.stderr_path, "w")
        run_env = dict(os.environ)
        for name_ in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
            run_env.pop(name_, None)
        run_env.update(env or {})
        self.proc = subprocess.Popen(command, stdout=self.out, stderr=self.err, env=run_env)

    def lines(self, kind=None):
        return [r for r in read_jsonl(self.output) if kind is None or r["kind"] == kind]

    def messages(self):
        return [r["data"] for r in self.lines("message")]

    def stderr(self):
        return self.stderr_path.read_text()

    def wait_for(self, condition, what):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                raise AssertionError("probe exited with %s while waiting for %s\n%s" %
                                     (self.proc.returncode, what, self.stderr()[-4000:]))
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s\nprobe log:\n%s" % (what, self.stderr()[-4000:]))

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()
        return self.proc.returncode

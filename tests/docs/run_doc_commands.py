#!/usr/bin/env python3
"""Runs the documentation's commands: every fenced block whose info string is `sh runnable` in
README.md and docs/**/*.md, in file order, against a deployment made the way scripts/run makes
it (a SoftHSM token under var/hsm, the development CA under var/tls, config/signd.example.yaml
with policy/policy.example.yaml, licentra-signd on 127.0.0.1:8443 and 9090), in a scratch copy
of the paths the commands use. Each block runs in `bash -euo pipefail` from that directory with
the build's binaries on PATH. A block that fails is reported with its file and line.

    run_doc_commands.py SOURCE_DIR BUILD_DIR

Exit 0 when every block passed, 1 when one failed or none was found, 77 outside CI when a tool
is missing (under CI=true a missing tool fails).
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

FENCE = re.compile(r"^```(.*)$")


def runnable_blocks(source):
    pages = [source / "README.md"] + sorted((source / "docs").rglob("*.md"))
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if m.group(1).split() == ["sh", "runnable"]:
                yield page.relative_to(source), i + 1, "\n".join(lines[i + 1:j]) + "\n"
            i = j + 1


def missing_tool(name):
    print(f"run_doc_commands: required program '{name}' is not installed; run scripts/setup",
          file=sys.stderr)
    return 1 if os.environ.get("CI") == "true" else 77


def ready(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def main():
    source = pathlib.Path(sys.argv[1]).resolve()
    build = pathlib.Path(sys.argv[2]).resolve()
    for tool in ("softhsm2-util", "openssl", "curl", "jq", "promtool"):
        if shutil.which(tool) is None:
            return missing_tool(tool)
    blocks = list(runnable_blocks(source))
    if not blocks:
        print("run_doc_commands: no `sh runnable` block found", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="licentra-docs-") as scratch:
        root = pathlib.Path(scratch)
        for d in ("config", "policy"):
            shutil.copytree(source / d, root / d)
        for d in ("hsm", "scripts", "dist", "tests"):
            (root / d).symlink_to(source / d)
        (root / "build").symlink_to(build)
        env = dict(os.environ)
        env["SOFTHSM2_CONF"] = str(root / "var/hsm/softhsm2.conf")
        env["PATH"] = f"{build / 'src/app'}:{env['PATH']}"
        env["XDG_CONFIG_HOME"] = str(root / "xdg")  # no profile of the machine's user
        for k in ("LICENTRA_SERVER", "LICENTRA_CERT", "LICENTRA_KEY", "LICENTRA_CA",
                  "LICENTRA_PROFILE"):
            env.pop(k, None)

        def setup(*argv):
            subprocess.run(argv, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)

        setup(str(source / "hsm/provision"), "--dir", str(root / "var/hsm"), "--label", "licentra")
        setup(str(source / "scripts/dev-certs"), str(root / "var/tls"))
        log = open(root / "signd.log", "w")
        daemon = subprocess.Popen(
            [str(build / "src/app/licentra-signd"), "--config", "config/signd.example.yaml"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        failures = []
        try:
            deadline = time.monotonic() + 60
            while not ready("http://127.0.0.1:9090/readyz"):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    print((root / "signd.log").read_text(), file=sys.stderr)
                    print("run_doc_commands: licentra-signd did not become ready",
                          file=sys.stderr)
                    return 1
                time.sleep(0.05)
            for page, line, text in blocks:
                r = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=root, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180,
                                   text=True)
                status = "ok" if r.returncode == 0 else f"FAILED (exit {r.returncode})"
                print(f"{page}:{line}: {status}")
                if r.returncode != 0:
                    failures.append(f"{page}:{line}: exit {r.returncode}\n{text}--- output:\n"
                                    f"{r.stdout}")
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
            log.close()
        for f in failures:
            print(f, file=sys.stderr)
        if daemon.returncode != 0:
            print(f"run_doc_commands: licentra-signd exited {daemon.returncode}", file=sys.stderr)
            print((root / "signd.log").read_text(), file=sys.stderr)
            return 1
        print(f"run_doc_commands: {len(blocks) - len(failures)} of {len(blocks)} blocks passed")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""The session's nginx (web/nginx/session.conf.template) as the local launcher runs it, met directly on
its socket: a client that stops sending a body is cut off after gateway.body_idle_timeout."""
import shutil
import socket
import tempfile
from pathlib import Path

import local_system  # scripts/, put on the path by conftest
import yaml

from hebi_common.config import load_config
from hebi_common.identity import HEADER, Identity, sign_identity
from pod_launcher.local import LocalLauncher


def test_session_nginx_cuts_off_a_body_that_never_arrives(nginx_mode):
    # A short base: the session's sockets live under it.
    base = Path(tempfile.mkdtemp(prefix="hebi-ng-", dir="/tmp"))
    config_path = local_system.write_config(base, nginx=nginx_mode)
    document = yaml.safe_load(config_path.read_text())
    document["gateway"]["body_idle_timeout"] = 2
    config_path.write_text(yaml.safe_dump(document))
    local_system.user_folders(config_path, "gina")
    launcher = LocalLauncher(load_config(config_path), str(config_path))
    info = launcher.start(Identity(user="gina"))
    try:
        client = socket.socket(socket.AF_UNIX)
        client.settimeout(30)  # a safety net only: the test fails if it is reached
        client.connect(info.url.removeprefix("unix:"))
        identity = sign_identity(Identity(user="gina"), info.secret)
        client.sendall(f"PUT /api/files?root=output&path=held.bin HTTP/1.1\r\nHost: session\r\n{HEADER}: {identity}\r\n"
                       "Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n".encode())
        try:
            answer = client.recv(4096)
        except TimeoutError:
            raise AssertionError("the session's nginx held a body that never came") from None
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
        client.close()
    finally:
        launcher.stop("gina")
        shutil.rmtree(base, ignore_errors=True)

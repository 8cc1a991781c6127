"""A real OpenLDAP server (Debian's slapd) on loopback, with a FreeIPA-like tree, for tests
and benchmarks.

    cn=users,cn=accounts,<base>    inetOrgPerson + posixAccount (uidNumber, gidNumber)
    cn=groups,cn=accounts,<base>   groupOfNames (member) + gidNumber

It listens for plain LDAP (StartTLS offered, with a certificate from a CA made here) and
LDAPS, on free ports; entries are written with ldap3 as the directory's manager.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection, Server
from ldap3.utils.hashed import hashed

from labspace.testing.stack import free_port

SLAPD = Path("/usr/sbin/slapd")
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
CONFIG = """\
{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
TLSCACertificateFile {root}/ca.pem
TLSCertificateFile {root}/server.pem
TLSCertificateKeyFile {root}/server.key
database mdb
maxsize 16777216
suffix "{base}"
rootdn "cn=manager,{base}"
rootpw {password}
directory {root}/db
access to attrs=userPassword by anonymous auth by self write by * none
access to * by * read
"""


@dataclass
class Slapd:
    root: Path
    base: str = "dc=lab,dc=test"
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    manager_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://localhost:{self.tls_port}"

    @property
    def manager(self) -> str:
        return f"cn=manager,{self.base}"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    def user_dn(self, name: str) -> str:
        return f"uid={name},cn=users,cn=accounts,{self.base}"

    def group_dn(self, name: str) -> str:
        return f"cn={name},cn=groups,cn=accounts,{self.base}"

    def start(self) -> Slapd:
        if not SLAPD.exists():
            raise RuntimeError(f"{SLAPD} is missing: apt-get install -y slapd")
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        _write_certificates(self.root)
        includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
        config = self.root / "slapd.conf"
        config.write_text(CONFIG.format(includes=includes, root=self.root, base=self.base,
                                        password=self.manager_password))
        log = (self.root / "slapd.log").open("ab")
        # -d 0: stay in the foreground (so the fixture owns the process), log nothing.
        self.process = subprocess.Popen(
            [str(SLAPD), "-f", str(config), "-d", "0",
             "-h", f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self._wait()
        self._seed()
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError("slapd exited:\n" + (self.root / "slapd.log").read_text())
            try:
                with self.connect():
                    return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("slapd did not answer within 15 s")

    def connect(self) -> Connection:
        return Connection(Server(self.url), self.manager, self.manager_password,
                          auto_bind=True, raise_exceptions=True)

    def _seed(self) -> None:
        with self.connect() as ldap:
            ldap.add(self.base, ["dcObject", "organization"], {"o": "lab", "dc": "lab"})
            ldap.add(f"cn=accounts,{self.base}", ["organizationalRole"], {"cn": "accounts"})
            for name in ("users", "groups"):
                ldap.add(f"cn={name},cn=accounts,{self.base}", ["organizationalRole"],
                         {"cn": name})

    def add_user(self, name: str, password: str, uid: int | None, gid: int | None) -> None:
        classes = ["inetOrgPerson"] + (["posixAccount"] if uid is not None else [])
        attributes: dict[str, object] = {
            "cn": name, "sn": name, "userPassword": hashed("SALTED_SHA", password)}
        if uid is not None:
            attributes.update(uidNumber=uid, gidNumber=gid if gid is not None else uid,
                              homeDirectory=f"/home/{name}")
        with self.connect() as ldap:
            ldap.add(self.user_dn(name), classes, attributes)

    def add_group(self, name: str, gid: int | None, members: list[str]) -> None:
        # groupOfNames needs a member: the manager stays in each, so a group can be emptied.
        attributes: dict[str, object] = {
            "cn": name, "member": [self.manager, *(self.user_dn(m) for m in members)]}
        classes = ["groupOfNames"]
        if gid is not None:
            classes.append("extensibleObject")
            attributes["gidNumber"] = gid
        with self.connect() as ldap:
            ldap.add(self.group_dn(name), classes, attributes)

    def remove_user(self, name: str) -> None:
        with self.connect() as ldap:
            ldap.delete(self.user_dn(name))

    def set_member(self, group: str, user: str, member: bool) -> None:
        with self.connect() as ldap:
            ldap.modify(self.group_dn(group), {"member": [
                (MODIFY_ADD if member else MODIFY_DELETE, [self.user_dn(user)])]})

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _write_certificates(root: Path) -> None:
    """A CA, and a certificate it signed for localhost and 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labspace test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (root / "ca.pem").write_bytes(ca.public_bytes(pem))
    (root / "server.pem").write_bytes(cert.public_bytes(pem))
    (root / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (root / "server.key").chmod(0o600)

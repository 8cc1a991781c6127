"""The composition root: builds every service from the settings, in one place.

Used by the web app's lifespan and by the CLI commands that work on the database directly
(``labspace init``). Nothing is built at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from labspace.apps.pool import AppPools
from labspace.apps.ratelimit import ClaimRate
from labspace.apps.service import AppService
from labspace.apps.store import AppStore
from labspace.audit import AuditLog
from labspace.config import Settings
from labspace.errors import LabspaceError, NotFound, PermissionDenied
from labspace.gpus import GpuService, GpuSource, Held, NoGpus, NvmlSource
from labspace.identity.authenticator import Authenticator, build_authenticator, lab_directory
from labspace.identity.devicelogin import DeviceLogins
from labspace.identity.directorysync import Sweep, sweep
from labspace.identity.failedlogins import LoginThrottle
from labspace.identity.ldap import LdapDirectory
from labspace.identity.oidc import OidcClient, OidcConfig
from labspace.identity.passwords import generate_password
from labspace.identity.revocation import ProxyNotifier
from labspace.identity.tokens import issue_token
from labspace.identity.users import INSTRUCTOR, UserService
from labspace.load import LoadFeed, open_feed
from labspace.load.gpus import this_host
from labspace.metrics import HubMetrics
from labspace.origins import Origins
from labspace.policy import Allowance, allowance_for
from labspace.policy.allowance import UNRESTRICTED
from labspace.runtime import Runtime
from labspace.sharing.service import PortSharing
from labspace.sharing.store import ShareStore
from labspace.ssh import SshFiles, SshKeyStore
from labspace.state.db import Database
from labspace.state.models import User
from labspace.storage import remove_home, retire_home
from labspace.storage.mounts import warn_about_homes_mount
from labspace.storage.permissions import secure_data_dir
from labspace.templates import builtin_templates
from labspace.templates.model import TemplateSpec
from labspace.templates.store import TemplateStore
from labspace.workshops.credentials import Sealer
from labspace.workshops.service import WorkshopInfo, WorkshopService
from labspace.workspaces.activity import ProxyActivity
from labspace.workspaces.culler import IdleCuller
from labspace.workspaces.events import EventBus
from labspace.workspaces.manager import WorkspaceManager
from labspace.workspaces.quotas import QuotaBook
from labspace.workspaces.reconcile import reconcile, reconcile_forever
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceRecord, WorkspaceStore

log = logging.getLogger(__name__)

WORKSHOP_CHECK_INTERVAL = 30.0  # seconds: an expired workshop's accounts end within this

ADMIN_TOKEN_FILE = "admin-token"


@dataclass(frozen=True)
class DeletedUser:
    name: str
    uid: int
    home_kept_at: str | None  # where the home was moved; None: deleted (or there was none)


@dataclass
class Hub:
    settings: Settings
    db: Database
    runtime: Runtime
    users: UserService
    templates: TemplateStore
    store: WorkspaceStore
    manager: WorkspaceManager
    authenticator: Authenticator
    bus: EventBus
    proxy: ProxyNotifier
    login_throttle: LoginThrottle  # in the database: a restart or another hub forgets nothing
    idle: IdleCuller  # stops workspaces idle past their policy (workspaces/culler.py)
    ssh_keys: SshKeyStore
    sharing: PortSharing
    audit: AuditLog  # hub.audit.record("user.create", actor=..., target=..., address=...)
    workshops: WorkshopService
    apps: AppService  # instant apps: their definitions and pools
    device_logins: DeviceLogins = field(default_factory=DeviceLogins)  # `labspace login`
    # This host's GPUs and who holds them; ``await hub.gpus.readings()`` for the load page.
    gpus: GpuService = field(default_factory=lambda: GpuService(NoGpus()))
    oidc: OidcClient | None = None  # single sign-on, where oidc_issuer is set
    directory: LdapDirectory | None = None  # the lab's LDAP directory, where auth = "ldap"
    metrics: HubMetrics | None = None  # /hub/metrics (labspace/metrics.py)
    _background: list[asyncio.Task[None]] = field(default_factory=list)
    _creating: asyncio.Lock = field(default_factory=asyncio.Lock)
    _load: LoadFeed | None = None

    @property
    def load(self) -> LoadFeed:
        """The load page's sampling (labspace.load): made on first use, and it samples
        only while a page watches."""
        if self._load is None:
            self._load = open_feed(self.settings, self.runtime,
                                   gpus=this_host(self.gpus.readings))
        return self._load

    @property
    def quotas(self) -> QuotaBook:
        """Quotas per user and group, checked at each start (workspaces/quotas.py)."""
        return self.manager.quotas

    async def offboard(self, name: str, *, by: str, address: str = "") -> User:
        """Disable an account: its sessions and tokens end and its workspaces stop; its
        home and workspaces are kept. Nobody disables their own account."""
        user = await self._offboard(name, by=by)
        await self.audit.record("user.disable", actor=by, target=name, address=address)
        return user

    async def _offboard(self, name: str, *, by: str) -> User:
        if name == by:
            raise PermissionDenied("you cannot disable your own account")
        user = await self.users.set_disabled(name, True)
        await self.proxy.revoked(users=[name])  # open connections end now, not in seconds
        await self.ssh_keys.sync(name)  # an empty authorized_keys: no key outlives the account
        for record in await self.store.list(owner=name):
            if record.state != State.STOPPED:
                await self.manager.stop(record.owner, record.name)
        return user

    async def sync_directory(self, *, by: str = "", address: str = "") -> Sweep | None:
        """Offboard the directory accounts that left the directory or its allowed groups
        (identity/directorysync.py); None without a directory. ``by``: the admin who asked
        (empty: the periodic check)."""
        if self.directory is None:
            return None
        allowed = frozenset(group.lower() for group in self.settings.ldap_allowed_groups)
        found = await sweep(self.directory, self.users, allowed)
        if not found.held_back:
            for name in found.gone:
                log.info("%s left the directory or its allowed groups: disabled", name)
                await self._offboard(name, by="the directory")
                await self.audit.record("directory.offboard", actor=by, target=name,
                                        address=address)
        return found

    async def _sync_directory_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ldap_sync_interval)
            try:
                await self.sync_directory()
            except LabspaceError as error:  # the directory is down: ask again next time
                log.warning("directory check skipped: %s", error.message)
            except Exception:  # never let one bad sweep end the checks for good
                log.exception("directory check failed; trying again in %.0f s",
                              self.settings.ldap_sync_interval)

    async def delete_user(self, name: str, *, by: str, delete_home: bool = False,
                          address: str = "") -> DeletedUser:
        """Delete an account: it is offboarded first (sessions, tokens and connections end),
        its workspaces and their containers are removed, then the account (its uid is
        retired). Its home is deleted when ``delete_home`` (the caller confirmed it by
        name), else moved to <homes>/.deleted for an admin."""
        if name == by:
            raise PermissionDenied("you cannot delete your own account")
        user = await self.users.get(name)
        if not user.disabled:
            await self._offboard(name, by=by)  # audited as part of user.delete
        for record in await self.store.list(owner=name):
            await self.manager.delete(record.owner, record.name)
        await self.ssh_keys.files.remove_user(name)
        await self.users.delete(name, by=by)
        if delete_home:
            await remove_home(self.settings.homes, name)
            kept = None
        else:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = await retire_home(self.settings.homes, name, user.uid, stamp)
        log.info("user %s deleted by %s (home %s)", name, by,
                 "deleted" if delete_home else f"kept at {kept}")
        await self.audit.record("user.delete", actor=by, target=name, address=address,
                                home="deleted" if delete_home else "kept")
        return DeletedUser(name, user.uid, str(kept) if kept else None)

    async def save_template(self, spec: TemplateSpec, *, replace: bool, by: str = "",
                            address: str = "") -> TemplateSpec:
        """Add or replace a template; a lowered port_sharing lowers the shares made under
        it at once."""
        saved = await self.templates.add(spec, replace=replace)
        await self.sharing.apply_cap(saved.name, saved.port_sharing)
        await self.audit.record("template.save", actor=by, target=saved.name, address=address,
                                replace=replace)
        return saved

    async def reinstate(self, name: str, *, by: str = "", address: str = "") -> User:
        """Enable a disabled account again, with the SSH keys it had."""
        user = await self.users.set_disabled(name, False)
        await self.ssh_keys.sync(name)
        await self.audit.record("user.enable", actor=by, target=name, address=address)
        return user

    # -- what members may use (labspace.policy) ----------------------------------------

    def is_instructor(self, user: User) -> bool:
        groups = {group["name"] for group in user.groups or []}
        return (user.is_admin or user.role == INSTRUCTOR
                or bool(groups & set(self.settings.instructor_groups)))

    async def allowance(self, owner: str) -> Allowance:
        """What ``owner`` may use: their groups' access rules; a workshop's attendees only
        its template."""
        user = await self.users.get(owner)
        workshop = await self.workshops.of_user(user.id)
        return allowance_for([str(group["name"]) for group in user.groups or []],
                             self.settings.access, is_admin=user.is_admin,
                             only_template=workshop.template if workshop else None)

    async def create_workspace(self, owner: str, name: str, template: str,
                               profile: str | None = None, *, by_admin: bool = False
                               ) -> WorkspaceRecord:
        """Create a workspace within the owner's allowance (an admin acting may pass it);
        ``profile`` None: the owner's default profile."""
        allowance = UNRESTRICTED if by_admin else await self.allowance(owner)
        profile = allowance.default_profile() if profile is None else profile
        allowance.check_template(template)
        allowance.check_profile(profile)
        async with self._creating:  # the count and the create, one owner after another
            allowance.check_count(len(await self.store.list(owner=owner)))
            return await self.manager.create(owner, name, template, profile)

    async def start_workspace(self, owner: str, name: str, *, by_admin: bool = False
                              ) -> WorkspaceRecord:
        """Start it if its template and profile are still the owner's to use (groups
        change at each login)."""
        if not by_admin:
            record = await self.store.get(owner, name)
            allowance = await self.allowance(owner)
            allowance.check_template(record.template)
            allowance.check_profile(record.profile)
        return await self.manager.start(owner, name)

    # -- workshops (labspace.workshops) -------------------------------------------------

    async def expire_workshops(self) -> list[str]:
        """Disable the accounts of the workshops past their end and stop their workspaces."""
        ended = await self.workshops.due()
        for name in ended:
            for member in await self.workshops.members(name):
                with contextlib.suppress(NotFound):
                    if not (await self.users.get(member)).disabled:
                        await self.offboard(member, by=f"workshop {name} (expired)")
            await self.workshops.mark_expired(name)
            log.info("workshop %s expired: its accounts are disabled", name)
            await self.audit.record("workshop.expire", actor="", target=name)
        return ended

    async def extend_workshop(self, name: str, expires_at: datetime) -> WorkshopInfo:
        """A new end; the accounts of an expired workshop are enabled again."""
        was = await self.workshops.get(name)
        info = await self.workshops.set_expiry(name, expires_at)
        if was.expired:
            for member in await self.workshops.members(name):
                await self.reinstate(member)
        return info

    async def reset_attendee(self, name: str, member: str) -> None:
        await self.workshops.reset(name, member)
        await self.proxy.revoked(users=[member])  # the old sessions' connections end now

    async def delete_workshop(self, name: str, *, by: str, delete_homes: bool) -> int:
        """Delete the attendees' accounts (homes moved to <homes>/.deleted unless
        ``delete_homes``, which the caller confirmed), then the workshop."""
        members = await self.workshops.members(name)
        for member in members:
            await self.delete_user(member, by=by, delete_home=delete_homes)
        await self.workshops.forget(name)
        return len(members)

    async def _expire_workshops_forever(self) -> None:
        while True:
            try:
                await self.expire_workshops()
            except Exception:  # never let one bad round end the checks for good
                log.exception("workshop expiry check failed; trying again in a minute")
            await asyncio.sleep(WORKSHOP_CHECK_INTERVAL)

    async def start_background(self) -> None:
        """Reconcile once now, then on the configured interval. An engine that does not
        answer yet is logged, not fatal: the hub serves its pages and the loop retries."""
        try:
            await self.ssh_keys.sync_all()  # heal key files lost or edited on disk
        except OSError as error:  # SSH is not worth a hub that does not start
            log.warning("could not write the SSH key files under %s: %s",
                        self.ssh_keys.files.root, error)
        try:
            log.info("reconciled: %s", await reconcile(self.manager))
        except LabspaceError as error:
            log.warning("first reconcile failed (retrying every %.0f s): %s",
                        self.settings.reconcile_interval, error)
        self._background.append(asyncio.create_task(
            reconcile_forever(self.manager, self.settings.reconcile_interval), name="reconcile"))
        if self.directory is not None and self.settings.ldap_sync_interval > 0:
            self._background.append(asyncio.create_task(
                self._sync_directory_forever(), name="directory sync"))
        self._background.append(asyncio.create_task(
            self.audit.prune_forever(), name="audit retention"))
        self._background.append(asyncio.create_task(
            self._expire_workshops_forever(), name="workshop expiry"))
        if self.settings.idle_check_interval > 0:
            self._background.append(asyncio.create_task(
                self.idle.run_forever(self.settings.idle_check_interval), name="idle stops"))
        await self.apps.pools.start()

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._load is not None:
            await self._load.close()
        await self.manager.close()
        await self.apps.pools.close()
        await self.runtime.close()
        await self.db.close()


def default_runtime(settings: Settings) -> Runtime:
    if settings.runtime == "swarm":
        from labspace.runtime.swarm import SwarmRuntime

        return SwarmRuntime(
            settings.docker_url,
            gateway_image=settings.swarm_gateway_image or settings.default_image_tag,
            guard_image=settings.swarm_guard_image)
    from labspace.runtime.docker import DockerRuntime

    return DockerRuntime(settings.docker_url)


async def open_hub(settings: Settings, runtime: Runtime | None = None,
                   gpu_source: GpuSource | None = None) -> Hub:
    secure_data_dir(settings)  # before anything is written there; creates it private
    await asyncio.to_thread(warn_about_homes_mount, settings.homes)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    await db.migrate()
    bus = EventBus()
    users = UserService(db, password_min_length=settings.password_min_length)
    templates = TemplateStore(db)
    await templates.seed(builtin_templates(settings.default_image_tag))
    store = WorkspaceStore(db, bus)
    runtime = runtime or default_runtime(settings)
    ssh_keys = SshKeyStore(db, SshFiles(settings.homes))
    metrics = HubMetrics(db)
    gpus = await open_gpus(settings, store, gpu_source)
    manager = WorkspaceManager(settings, runtime, templates, store, ssh_keys,
                               metrics=metrics.starts, gpus=gpus)
    proxy = ProxyNotifier(settings.control_socket)
    audit = AuditLog(db, settings.audit_retention_days)
    idle = IdleCuller(store=store, manager=manager, templates=templates,
                      profiles=settings.profiles, runtime=runtime,
                      activity=ProxyActivity(settings.control_socket), audit=audit)
    directory = lab_directory(settings)
    sharing = PortSharing(ShareStore(db), runtime, templates,
                          Origins(settings.url, settings.apps_domain), proxy.shares_changed)
    apps = _apps(settings, db, runtime, templates)
    metrics.watch_pools(apps.pools)
    metrics.watch_quotas(manager.quotas)
    hub = Hub(settings=settings, db=db, runtime=runtime, users=users, templates=templates,
              store=store, manager=manager, bus=bus,
              authenticator=build_authenticator(settings, users, directory),
              directory=directory,
              proxy=proxy, login_throttle=LoginThrottle(db), ssh_keys=ssh_keys,
              sharing=sharing, oidc=single_sign_on(settings),
              audit=audit, idle=idle,
              workshops=WorkshopService(db, users, Sealer(settings.signing_key())),
              apps=apps, metrics=metrics, gpus=gpus)
    metrics.watch_gpus(lambda: hub.gpus.readings())  # the hub's GPUs at each scrape
    return hub


async def open_gpus(settings: Settings, store: WorkspaceStore,
                    source: GpuSource | None = None) -> GpuService:
    """This host's GPUs (NVML unless ``source``), holding again what the open instances
    recorded, before any start can ask for one."""
    if source is None:
        source = NvmlSource() if settings.gpu_discovery else NoGpus()
    gpus = GpuService(source, cdi_dirs=[Path(d) for d in settings.gpu_cdi_dirs],
                      share_limit=settings.gpu_share_limit, cluster=settings.runtime == "swarm")
    await gpus.open(Held(wid, label, tuple(uuids), shared)
                    for wid, label, uuids, shared in await store.held_devices())
    return gpus


def _apps(settings: Settings, db: Database, runtime: Runtime,
          templates: TemplateStore) -> AppService:
    store = AppStore(db)
    pools = AppPools(settings, store, runtime, templates,
                     ProxyActivity(settings.control_socket).fetch)
    return AppService(store, pools, templates,
                      ClaimRate(settings.app_claim_burst, settings.app_claim_rate))


def single_sign_on(settings: Settings) -> OidcClient | None:
    if not settings.oidc_issuer:
        return None
    return OidcClient(OidcConfig.from_settings(settings), f"{settings.url}/hub/oidc/callback")


@dataclass(frozen=True)
class Bootstrap:
    admin: str
    password: str | None  # set only when the admin was created now
    token_file: str


async def bootstrap_admin(hub: Hub, name: str = "admin") -> Bootstrap:
    """Create the first admin with a one-time password when there are no users, and keep an
    admin API token for the CLI in data_dir/admin-token (mode 0600). Idempotent."""
    password = None
    if await hub.users.count() == 0:
        password = generate_password()
        await hub.users.create(name, password=password, is_admin=True, generated=True)
    token_path = hub.settings.data_dir / ADMIN_TOKEN_FILE
    if not token_path.exists():
        admins = [u for u in await hub.users.list() if u.is_admin and not u.disabled]
        if admins:
            async with hub.db.session() as session:
                token = await issue_token(session, admins[0], kind="api", note="labspace CLI")
            token_path.touch(mode=0o600)
            token_path.write_text(token + "\n")
    return Bootstrap(admin=name, password=password, token_file=str(token_path))

"""The load balancer stand-in's one entry point: target groups and load balancers as records,
registrations with health checks and draining, weights between target groups, and the listeners
that proxy real HTTP. CodeDeploy's traffic events, the management routes and the CLI call this.

Records live in the control plane's SQLite file (kinds `elb-target-group`, `elb-load-balancer`,
and `elb-target` whose status is AWS's TargetHealth state, changed only through the orchestrator),
so a restart brings back every registration, weight and listener port. The routing state the
listeners read lives in memory; every change to it is written to the records by one writer thread,
in order, so the proxy never waits on SQLite.

A "classic" load balancer (a name in CodeDeploy's elbInfoList) is a load balancer with one implicit
target group of the same name; instances registered "with the load balancer" are registered in it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import aiohttp

from emulator.domain import statuses
from emulator.domain.errors import Conflict, NotFound
from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.fleet_traffic import target_url
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.services.elb import arns
from emulator.services.elb.event_loop import EventLoopThread
from emulator.services.elb import health_check as health_checks
from emulator.services.elb.health_check import HealthCheck
from emulator.services.elb.health_checker import run_check
from emulator.services.elb.lb_metrics import LoadBalancerMetrics
from emulator.services.elb.proxy import Listener, client_session
from emulator.services.elb.routing import Target, TargetPool, WeightedChoice, check_weights
from emulator.services.elb.target_health import (
    DEREGISTERING, DRAINING, HEALTHY, INITIAL, NOT_IN_USE, NOT_REGISTERED, REGISTRATION, UNHEALTHY, UNUSED,
    CheckResult, TargetHealth,
)
from emulator.state.database import Database

TARGET_GROUP = "elb-target-group"
LOAD_BALANCER = "elb-load-balancer"
TARGET = statuses.ELB_TARGET
CHECKED = (INITIAL, HEALTHY, UNHEALTHY)
log = logging.getLogger(__name__)


@dataclass
class _Group:
    doc: dict
    check: HealthCheck
    pool: TargetPool = field(default_factory=TargetPool)
    checks: dict[str, Future] = field(default_factory=dict)  # instance id -> its health check loop


@dataclass
class _Balancer:
    doc: dict
    choice: WeightedChoice
    listener: Listener | None = None


def _target_id(group: str, instance_id: str) -> str:
    return f"{group}/{instance_id}"


class LoadBalancing:
    def __init__(self, db: Database, orch: Orchestrator, metrics: MetricStore, scale: TimeScale, ports: range,
                 instances: Callable[[str], dict | None] | None = None, host: str = "127.0.0.1"):
        """`ports`: where listeners without a port of their own are bound; `instances(id)`: the fleet's
        current document of an instance, to refresh target addresses after a restart."""
        self.db = db
        self.orch = orch
        self.scale = scale
        self.ports = ports
        self.instances = instances
        self.host = host
        self._lock = threading.RLock()        # the routing state, also taken briefly by the listeners
        self._changed = threading.Condition(self._lock)
        self._admin = threading.RLock()       # one create/delete/register/weights change at a time
        self._groups: dict[str, _Group] = {}
        self._balancers: dict[str, _Balancer] = {}
        self._loop = EventLoopThread()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="elb-writer")
        self._session: aiohttp.ClientSession | None = None
        self.metrics = LoadBalancerMetrics(metrics, scale, self._dimensions, self._host_counts)
        self._restore()

    # ------------------------------------------------------------ life

    def start(self) -> None:
        """Binds every listener, starts health checks and drains, and the metrics flusher."""
        if self._loop.running:
            return
        self._loop.start()
        self._session = self._loop.call(self._new_session())
        self._refresh_addresses()
        for name, balancer in list(self._balancers.items()):
            if not balancer.doc.get("weights"):
                continue  # no listener yet
            try:
                self._bind(balancer, balancer.doc.get("port"), restoring=True)
            except Conflict as exc:
                log.warning("load balancer %s: %s", name, exc)
        with self._lock:
            for name, group in self._groups.items():
                for target in group.pool.targets.values():
                    if target.state in CHECKED:
                        self._start_checks(name, target)
                    elif target.state == DRAINING:
                        self._schedule_drain_end(name, target)
        self.metrics.start()

    def stop(self) -> None:
        if not self._loop.running:
            return
        self.metrics.stop()
        with self._lock:
            for group in self._groups.values():
                for future in list(group.checks.values()):
                    future.cancel()
        try:
            self._loop.call(self._close(), timeout=10)
        except Exception:
            log.exception("stopping the load balancer listeners failed")
        self._loop.stop()
        self._persist(lambda: None).result(10)  # every change so far is recorded

    async def _new_session(self) -> aiohttp.ClientSession:
        return client_session()

    async def _close(self) -> None:
        for balancer in self._balancers.values():
            if balancer.listener is not None:
                await balancer.listener.stop()
                balancer.listener = None
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------ target groups

    def create_target_group(self, name: str, health_check: dict | None = None,
                            deregistration_delay: float | None = None) -> dict:
        """`health_check`: any of path, intervalSeconds, timeoutSeconds, healthyThresholdCount,
        unhealthyThresholdCount, matcher (the rest take ALB's defaults); `deregistration_delay`: seconds
        (default 300), both on the time scale."""
        arns.check_name("target group", name)
        check = health_checks.health_check(health_check)
        delay = health_checks.deregistration_delay(deregistration_delay)
        with self._admin:
            if name in self._groups:
                raise Conflict(f"DuplicateTargetGroupName: a target group named {name!r} already exists; choose "
                               f"another name or delete it first")
            id = arns.new_id()
            doc = {"targetGroupName": name, "targetGroupArn": arns.target_group_arn(self.db.region, self.db.account,
                                                                                    name, id),
                   "protocol": "HTTP", "port": 80, "targetType": "instance", "healthCheck": check.as_dict(),
                   "deregistrationDelaySeconds": delay, "createdTime": time.time()}
            self.db.put(TARGET_GROUP, name, doc)
            with self._lock:
                self._groups[name] = _Group(doc, check)
        return self.get_target_group(name)

    def delete_target_group(self, name: str) -> None:
        with self._admin:
            group = self._group(name)
            users = self.load_balancers_forwarding_to(name)
            if users:
                raise Conflict(f"ResourceInUse: target group {name!r} is used by load balancer(s) {', '.join(users)}; "
                               f"delete them or set their weights without {name!r} first")
            with self._lock:
                for future in list(group.checks.values()):
                    future.cancel()
                ids = list(group.pool.targets)
                del self._groups[name]
                self._changed.notify_all()
            for instance_id in ids:
                self._persist(self._delete_target_record, name, instance_id)
            self.db.delete(TARGET_GROUP, name)

    def get_target_group(self, name: str) -> dict:
        group = self._group(name)
        users = self.load_balancers_forwarding_to(name)
        with self._lock:
            states = [t.state for t in group.pool.targets.values()]
        return {**group.doc, "loadBalancerNames": users,
                "loadBalancerArns": [self._balancers[b].doc["loadBalancerArn"] for b in users if b in self._balancers],
                "targetCount": len(states), "healthyCount": states.count(HEALTHY)}

    def list_target_groups(self) -> list[dict]:
        return [self.get_target_group(name) for name in list(self._groups)]

    # ------------------------------------------------------------ load balancers

    def create_load_balancer(self, name: str, target_groups: list[str] | None = None,
                             weights: dict[str, int] | None = None, port: int | None = None,
                             classic: bool = False, listener: bool = True) -> dict:
        """An application load balancer whose listener forwards to `target_groups` (equal weights) or
        by `weights`; `classic`: a load balancer with one implicit target group of its own name;
        `listener=False`: none yet (ELBv2's CreateLoadBalancer; `set_listener` adds it)."""
        arns.check_name("load balancer", name)
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
            raise ValueError(f"port {port!r}: expected a port number from 1 to 65535, or none to have one chosen "
                             f"from {self.ports.start}-{self.ports.stop - 1}")
        with self._admin:
            if name in self._balancers:
                raise Conflict(f"DuplicateLoadBalancerName: a load balancer named {name!r} already exists; choose "
                               f"another name or delete it first")
            if not listener:
                if classic or target_groups or weights or port:
                    raise ValueError(f"load balancer {name!r}: without a listener it takes no target groups, "
                                     f"weights or port")
            elif classic:
                if target_groups or weights:
                    raise ValueError(f"classic load balancer {name!r}: it forwards to its own target group {name!r}; "
                                     f"give no target groups or weights")
                if name not in self._groups:
                    self.create_target_group(name)
                weights = {name: 1}
            elif weights is None:
                if not target_groups:
                    raise ValueError(f"load balancer {name!r}: name at least one target group to forward to "
                                     f"(target groups or weights)")
                weights = {tg: 1 for tg in target_groups}
            elif target_groups:
                raise ValueError(f"load balancer {name!r}: give target groups or weights, not both")
            weights = check_weights(weights) if listener else {}
            for tg in weights:
                self._group(tg)
            if port is not None and any(b.doc.get("port") == port for b in self._balancers.values()):
                raise Conflict(f"port {port} is already the listener port of another load balancer; choose another")
            id = arns.new_id()
            arn = arns.load_balancer_arn(self.db.region, self.db.account, name, id)
            doc = {"loadBalancerName": name, "loadBalancerArn": arn,
                   "type": "classic" if classic else "application", "scheme": "internet-facing",
                   "port": port, "weights": weights, "state": {"Code": "active"}, "createdTime": time.time(),
                   "listenerArn": arns.listener_arn(arn) if listener else None, "listenerPort": port}
            balancer = _Balancer(doc, WeightedChoice(weights))
            if self._loop.running and listener:
                self._bind(balancer, port)
                doc["listenerPort"] = doc["listenerPort"] or doc["port"]
            self.db.put(LOAD_BALANCER, name, balancer.doc)
            with self._lock:
                self._balancers[name] = balancer
            self._uses_changed()
        return self.get_load_balancer(name)

    def delete_load_balancer(self, name: str) -> None:
        with self._admin:
            balancer = self._balancer(name)
            with self._lock:
                del self._balancers[name]
            if balancer.listener is not None and self._loop.running:
                self._loop.call(balancer.listener.stop())
            self.db.delete(LOAD_BALANCER, name)
            self._uses_changed()
            if balancer.doc.get("type") == "classic" and name in self._groups \
                    and not self.load_balancers_forwarding_to(name):
                self.delete_target_group(name)

    def set_listener(self, name: str, weights: dict[str, int], requested_port: int | None = None) -> dict:
        """Adds the load balancer's one listener (ELBv2's CreateListener): it forwards by `weights` and
        binds a port of the range; `requested_port` is the port the caller named, kept for display."""
        weights = check_weights(weights)
        with self._admin:
            balancer = self._balancer(name)
            if balancer.doc.get("weights"):
                raise Conflict(f"DuplicateListener: load balancer {name!r} already has its listener; change its "
                               f"weights instead")
            for tg in weights:
                self._group(tg)
            with self._lock:
                balancer.doc.update(weights=weights, listenerArn=arns.listener_arn(balancer.doc["loadBalancerArn"]),
                                    listenerPort=requested_port)
                balancer.choice = WeightedChoice(weights)
            if self._loop.running:
                self._bind(balancer, None)
            self.db.put(LOAD_BALANCER, name, balancer.doc)
            self._uses_changed()
        return self.get_load_balancer(name)

    def remove_listener(self, name: str) -> None:
        """ELBv2's DeleteListener: the port is released and nothing is forwarded any more."""
        with self._admin:
            balancer = self._balancer(name)
            if balancer.listener is not None and self._loop.running:
                self._loop.call(balancer.listener.stop())
            with self._lock:
                balancer.listener = None
                balancer.doc.update(weights={}, listenerArn=None, listenerPort=None, port=None)
                balancer.choice = WeightedChoice({})
            self.db.put(LOAD_BALANCER, name, balancer.doc)
            self._uses_changed()

    def get_load_balancer(self, name: str) -> dict:
        balancer = self._balancer(name)
        with self._lock:
            doc = dict(balancer.doc)
        port = doc.get("port")
        return {**doc, "dnsName": f"{self.host}:{port}" if port else None, "url": self._url(port),
                "listening": balancer.listener is not None}

    def list_load_balancers(self) -> list[dict]:
        return [self.get_load_balancer(name) for name in list(self._balancers)]

    def url(self, load_balancer: str) -> str:
        port = self._balancer(load_balancer).doc.get("port")
        if not port:
            raise Conflict(f"load balancer {load_balancer!r} has no listener port yet: the control plane binds it "
                           f"when it starts")
        return self._url(port)

    def _url(self, port: int | None) -> str | None:
        return f"http://{self.host}:{port}/" if port else None

    def set_weights(self, load_balancer: str, weights: dict[str, int]) -> None:
        """Replaces the listener's forward action: target group name -> weight 0..999."""
        weights = check_weights(weights)
        with self._admin:
            balancer = self._balancer(load_balancer)
            if not balancer.doc.get("weights"):
                raise Conflict(f"load balancer {load_balancer!r} has no listener yet: add one (CreateListener) "
                               f"before changing its weights")
            for tg in weights:
                self._group(tg)
            if balancer.doc.get("type") == "classic" and set(weights) != {load_balancer}:
                raise ValueError(f"classic load balancer {load_balancer!r} forwards only to its own target group "
                                 f"{load_balancer!r}; use an application load balancer to split traffic")
            self.orch.update(LOAD_BALANCER, load_balancer, weights=weights)  # on the event feed for the console
            with self._lock:
                balancer.doc["weights"] = weights
                balancer.choice = WeightedChoice(weights)
            self._uses_changed()

    def weights(self, load_balancer: str) -> dict[str, int]:
        return dict(self._balancer(load_balancer).doc["weights"])

    def load_balancers_forwarding_to(self, target_group: str) -> list[str]:
        with self._lock:
            return [name for name, b in self._balancers.items() if target_group in b.doc["weights"]]

    def target_groups_for(self, load_balancer_info: dict) -> list[str]:
        """CodeDeploy's loadBalancerInfo: each elbInfoList name (a classic load balancer: its implicit
        target group) and each targetGroupInfoList name, in order, once each."""
        if not isinstance(load_balancer_info, dict):
            raise ValueError("loadBalancerInfo: expected an object with elbInfoList or targetGroupInfoList")
        names: list[str] = []
        for key in ("elbInfoList", "targetGroupInfoList"):
            entries = load_balancer_info.get(key) or []
            if not isinstance(entries, list):
                raise ValueError(f"loadBalancerInfo.{key}: expected a list of {{\"name\": ...}} objects")
            for i, entry in enumerate(entries):
                name = entry.get("name") if isinstance(entry, dict) else None
                if not name:
                    raise ValueError(f"loadBalancerInfo.{key}[{i}]: expected an object with a name")
                if key == "elbInfoList":
                    balancer = self._balancer(name)
                    if balancer.doc.get("type") != "classic":
                        raise ValueError(f"loadBalancerInfo.elbInfoList names {name!r}, an application load balancer; "
                                         f"name its target groups in targetGroupInfoList instead")
                else:
                    self._group(name)
                if name not in names:
                    names.append(name)
        return names

    # ------------------------------------------------------------ targets

    def register(self, target_group: str, instance: dict) -> None:
        """RegisterTargets: the instance starts "initial" and is health checked (or "unused" while no
        load balancer forwards to the group). Registering a registered target again changes nothing."""
        url = target_url(instance)
        instance_id = instance.get("instanceId")
        if not url or not instance_id:
            raise ValueError(f"instance {instance_id or instance!r} has no address the load balancer can reach: it "
                             f"must be running with its port 80 published (appUrl) or registered with an address")
        with self._admin:
            group = self._group(target_group)
            with self._lock:
                target = group.pool.targets.get(instance_id)
                if target is not None and target.state != DRAINING:
                    target.url = url
                    return
                state, reason = (INITIAL, REGISTRATION) if self.load_balancers_forwarding_to(target_group) \
                    else (UNUSED, NOT_IN_USE)
                if target is None:
                    target = Target(instance_id, url, TargetHealth(state, *reason))
                    group.pool.targets[instance_id] = target
                else:
                    statuses.check_transition(TARGET, target.state, state)
                    target.url = url
                    target.health.set(state, reason)
                    target.drain_until = None
                self._changed.notify_all()
                snapshot = self._snapshot(target_group, target)
            self._persist(self._write_target, snapshot).result(10)
            if state == INITIAL:
                with self._lock:
                    self._start_checks(target_group, target)

    def deregister(self, target_group: str, instance_id: str) -> None:
        """DeregisterTargets: the target gets no new requests and is "draining" for the group's
        deregistration delay (on the time scale), then removed. Deregistering it again changes nothing."""
        with self._admin:
            group = self._group(target_group)
            with self._lock:
                target = group.pool.targets.get(instance_id)
                if target is None:
                    raise NotFound("Target", f"{instance_id} in target group {target_group}")
                if target.state == DRAINING:
                    return
                self._stop_checks(group, instance_id)
                if target.state == UNUSED:  # never received traffic: removed at once
                    del group.pool.targets[instance_id]
                    self._changed.notify_all()
                    self._persist(self._delete_target_record, target_group, instance_id)
                    return
                statuses.check_transition(TARGET, target.state, DRAINING)
                target.health.set(DRAINING, DEREGISTERING)
                target.drain_until = time.time() + self.scale.real(group.doc["deregistrationDelaySeconds"])
                self._changed.notify_all()
                snapshot = self._snapshot(target_group, target)
                self._schedule_drain_end(target_group, target)
            self._persist(self._write_target, snapshot)

    def forget_instance(self, instance_id: str) -> list[str]:
        """A terminated instance leaves every target group at once (as ELB drops a terminated EC2
        instance); returns the groups it was in."""
        left = []
        with self._admin:
            with self._lock:
                for name, group in self._groups.items():
                    if instance_id in group.pool.targets:
                        self._stop_checks(group, instance_id)
                        del group.pool.targets[instance_id]
                        left.append(name)
                self._changed.notify_all()
            for name in left:
                self._persist(self._delete_target_record, name, instance_id)
        return left

    def wait_healthy(self, target_group: str, instance_id: str, timeout: float) -> tuple[bool, str]:
        """Waits up to `timeout` real seconds: (True, "") once healthy; (False, reason) when the target
        turns unhealthy (AWS's reason code and description), is not registered or not in use, or time is up."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                group = self._groups.get(target_group)
                if group is None:
                    return False, f"target group {target_group} does not exist"
                target = group.pool.targets.get(instance_id)
                if target is None:
                    return False, f"{NOT_REGISTERED[0]}: {instance_id} is not registered in target group {target_group}"
                health = target.health
                if health.state == HEALTHY:
                    return True, ""
                if health.state in (UNHEALTHY, DRAINING, UNUSED):
                    return False, f"{health.reason}: {health.description}"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False, (f"{instance_id} is still {health.state} in target group {target_group} after "
                                   f"{timeout:g} s ({health.reason}: {health.description})")
                self._changed.wait(remaining)

    def wait_drained(self, target_group: str, instance_id: str, timeout: float) -> bool:
        """True once the target gets no requests: deregistered with none in flight (as ALB completes
        a deregistration early when nothing is in flight), or gone. False if `timeout` passes first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                group = self._groups.get(target_group)
                if group is None or group.pool.drained(instance_id):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)

    def is_registered(self, target_group: str, instance_id: str) -> bool:
        group = self._group(target_group)
        with self._lock:
            target = group.pool.targets.get(instance_id)
            return target is not None and target.state != DRAINING

    def targets(self, target_group: str) -> list[dict]:
        """DescribeTargetHealth: each target's state, reason code and description."""
        group = self._group(target_group)
        with self._lock:
            return [{"instanceId": t.instance_id, "state": t.state, "reason": t.health.reason,
                     "description": t.health.description} for t in group.pool.targets.values()]

    # ------------------------------------------------------------ the listeners' side

    def route(self, load_balancer: str) -> tuple[str | None, Target | None]:
        """The target group and target for the next request (counted in flight until released)."""
        with self._lock:
            balancer = self._balancers.get(load_balancer)
            name = balancer.choice.next() if balancer else None
            group = self._groups.get(name) if name else None
            target = group.pool.next() if group else None
            if target is not None:
                target.in_flight += 1
            return name, target

    def release(self, group: str, target: Target) -> None:
        with self._lock:
            target.in_flight -= 1
            if target.state == DRAINING and target.in_flight == 0:
                self._changed.notify_all()

    def _dimensions(self, load_balancer: str, group: str | None) -> tuple[str, str | None] | None:
        with self._lock:
            balancer = self._balancers.get(load_balancer)
            tg = self._groups.get(group) if group else None
            if balancer is None or (group and tg is None):
                return None
            return (arns.dimension(balancer.doc["loadBalancerArn"]),
                    arns.dimension(tg.doc["targetGroupArn"]) if tg else None)

    def _host_counts(self) -> list[tuple[str, str, int, int]]:
        with self._lock:
            return [(lb, tg, *self._groups[tg].pool.counts()) for lb, b in self._balancers.items()
                    for tg in b.doc["weights"] if tg in self._groups]

    # ------------------------------------------------------------ internals

    def _group(self, name: str) -> _Group:
        group = self._groups.get(name)
        if group is None:
            raise NotFound("TargetGroup", name)
        return group

    def _balancer(self, name: str) -> _Balancer:
        balancer = self._balancers.get(name)
        if balancer is None:
            raise NotFound("LoadBalancer", name)
        return balancer

    def _bind(self, balancer: _Balancer, port: int | None, restoring: bool = False) -> None:
        """Starts the listener on `port`, or on the first free port of the range."""
        name = balancer.doc["loadBalancerName"]
        taken = {b.doc.get("port") for n, b in self._balancers.items() if n != name}
        candidates = [port] if port else [p for p in self.ports if p not in taken]
        if restoring and port:
            candidates += [p for p in self.ports if p not in taken and p != port]
        for candidate in candidates:
            listener = Listener(name, candidate, self, self.metrics.record, lambda: self._session, self.host)
            try:
                self._loop.call(listener.start())
            except OSError:
                continue
            balancer.listener = listener
            if candidate != balancer.doc.get("port"):
                if restoring:
                    log.warning("load balancer %s: port %s is taken; listening on %s instead", name, port, candidate)
                balancer.doc["port"] = candidate
                if self.db.get(LOAD_BALANCER, name) is not None:
                    self.db.update(LOAD_BALANCER, name, port=candidate)
            return
        if port and not restoring:
            raise Conflict(f"port {port} on {self.host} is in use; choose another port or leave it out to have one "
                           f"chosen from {self.ports.start}-{self.ports.stop - 1}")
        raise Conflict(f"no free port for load balancer {name!r} in {self.ports.start}-{self.ports.stop - 1}; "
                       f"delete a load balancer or give a port")

    def _uses_changed(self) -> None:
        """After load balancers or weights change: targets of groups now in use start "initial" and
        are checked; targets of groups no longer in use become "unused" (Target.NotInUse)."""
        with self._lock:
            used = {tg for b in self._balancers.values() for tg in b.doc["weights"]}
            for name, group in self._groups.items():
                for target in group.pool.targets.values():
                    if name in used and target.state == UNUSED:
                        target.health.set(INITIAL, REGISTRATION)
                        self._start_checks(name, target)
                    elif name not in used and target.state in CHECKED:
                        self._stop_checks(group, target.instance_id)
                        target.health.set(UNUSED, NOT_IN_USE)
                    else:
                        continue
                    self._persist(self._write_target, self._snapshot(name, target))
            self._changed.notify_all()

    def _start_checks(self, group_name: str, target: Target) -> None:
        """Called with the lock held; the loop starts the target's check cycle (first check at once)."""
        group = self._groups[group_name]
        if not self._loop.running or target.instance_id in group.checks:
            return
        future = self._loop.submit(self._check_cycle(group_name, target))
        group.checks[target.instance_id] = future
        future.add_done_callback(lambda f, g=group, i=target.instance_id: self._check_ended(g, i, f))

    def _check_ended(self, group: _Group, instance_id: str, future: Future) -> None:
        with self._lock:
            if group.checks.get(instance_id) is future:
                del group.checks[instance_id]

    def _stop_checks(self, group: _Group, instance_id: str) -> None:
        future = group.checks.pop(instance_id, None)
        if future is not None:
            future.cancel()

    def _current(self, group_name: str, target: Target) -> _Group | None:
        group = self._groups.get(group_name)
        if group is None or group.pool.targets.get(target.instance_id) is not target or target.state not in CHECKED:
            return None
        return group

    async def _check_cycle(self, group_name: str, target: Target) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                group = self._current(group_name, target)
            if group is None:
                return
            started = loop.time()
            result = await run_check(self._session, target.url, group.check, self.scale)
            self._observe(group_name, target, result)
            await asyncio.sleep(max(0.0, self.scale.real(group.check.intervalSeconds) - (loop.time() - started)))

    def _observe(self, group_name: str, target: Target, result: CheckResult) -> None:
        with self._lock:
            group = self._current(group_name, target)
            if group is None:
                return
            before = target.state
            if not target.health.observe(result, group.check):
                return
            if target.state != before:
                statuses.check_transition(TARGET, before, target.state)
                self._changed.notify_all()
            snapshot = self._snapshot(group_name, target)
        self._persist(self._write_target, snapshot)

    def _schedule_drain_end(self, group_name: str, target: Target) -> None:
        if self._loop.running:
            self._loop.submit(self._drain_end(group_name, target, target.drain_until or time.time()))

    async def _drain_end(self, group_name: str, target: Target, until: float) -> None:
        await asyncio.sleep(max(0.0, until - time.time()))
        with self._lock:
            group = self._groups.get(group_name)
            if group is None or group.pool.targets.get(target.instance_id) is not target \
                    or target.state != DRAINING or target.drain_until != until:
                return  # registered again, or its group deleted, meanwhile
            del group.pool.targets[target.instance_id]
            self._changed.notify_all()
        self._persist(self._delete_target_record, group_name, target.instance_id)

    # ------------------------------------------------------------ records

    def _snapshot(self, group_name: str, target: Target) -> dict:
        return {"targetGroupName": group_name, "instanceId": target.instance_id, "url": target.url,
                "state": target.state, "reason": target.health.reason, "description": target.health.description,
                "drainUntil": target.drain_until}

    def _persist(self, fn, *args) -> Future:
        def run():
            try:
                fn(*args)
            except Exception:
                log.exception("recording a load balancer change failed")
        return self._writer.submit(run)

    def _write_target(self, snapshot: dict) -> None:
        id = _target_id(snapshot["targetGroupName"], snapshot["instanceId"])
        fields = {k: v for k, v in snapshot.items() if k != "state"}
        doc = self.db.get(TARGET, id)
        if doc is None:
            self.orch.create(TARGET, id, fields, parent=snapshot["targetGroupName"], status=snapshot["state"])
        elif doc.get("status") != snapshot["state"]:
            self.orch.transition(TARGET, id, snapshot["state"], **fields)
        else:
            self.orch.update(TARGET, id, **fields)

    def _delete_target_record(self, group_name: str, instance_id: str) -> None:
        id = _target_id(group_name, instance_id)
        doc = self.db.get(TARGET, id)
        if doc is None:
            return
        reason, description = NOT_REGISTERED
        if doc.get("status") != UNUSED:
            self.orch.transition(TARGET, id, UNUSED, reason=reason, description=description)
        self.db.delete(TARGET, id)

    def _refresh_addresses(self) -> None:
        """After a restart an instance may answer on another published port: ask the fleet."""
        if self.instances is None:
            return
        with self._lock:
            targets = [(name, t) for name, g in self._groups.items() for t in g.pool.targets.values()]
        for name, target in targets:
            try:
                url = target_url(self.instances(target.instance_id) or {})
            except LookupError:
                continue
            if url and url != target.url:
                with self._lock:
                    target.url = url
                    snapshot = self._snapshot(name, target)
                self._persist(self._write_target, snapshot)

    def _restore(self) -> None:
        """Target groups, load balancers and registrations from the records (listeners bind in start)."""
        for doc in self.db.list(TARGET_GROUP):
            try:
                self._groups[doc["targetGroupName"]] = _Group(doc, health_checks.health_check(doc.get("healthCheck")))
            except ValueError as exc:
                log.warning("target group %s not restored: %s", doc.get("targetGroupName"), exc)
        for doc in self.db.list(LOAD_BALANCER):
            weights = {tg: w for tg, w in (doc.get("weights") or {}).items() if tg in self._groups}
            if (weights and any(weights.values())) or not doc.get("weights"):  # or a load balancer with no listener
                self._balancers[doc["loadBalancerName"]] = _Balancer(doc, WeightedChoice(weights))
        for doc in self.db.list(TARGET):
            group = self._groups.get(doc.get("targetGroupName"))
            if group is None:
                continue
            url = doc.get("url")
            health = TargetHealth(doc.get("status") or INITIAL, doc.get("reason") or "", doc.get("description") or "")
            group.pool.targets[doc["instanceId"]] = Target(doc["instanceId"], url, health,
                                                           drain_until=doc.get("drainUntil"))
        self._uses_changed()

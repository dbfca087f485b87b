"""The composition root: builds every service once, wires them, and recovers after a restart."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.config import Settings
from emulator.orchestration import Orchestrator
from emulator.runtime.container_runtime import LABEL_OWNER, LABEL_ROLE, NETWORK_NAME, ContainerRuntime
from emulator.services.cloudwatch.alarms import Alarms
from emulator.services.cloudwatch.deployment_alarms import DeploymentAlarmMonitor
from emulator.services.cloudwatch.fleet_traffic import FleetTraffic, fleet_targets
from emulator.services.cloudwatch.host_metrics import HostMetrics
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.services.codebuild.batches import BatchService
from emulator.services.codebuild.builds import BuildService, Endpoints
from emulator.services.codebuild.handed_builds import HandedBuilds
from emulator.services.codebuild.warm_containers import WARM_OWNER
from emulator.services.codebuild.projects import Projects
from emulator.services.codecommit.repositories import Repositories
from emulator.services.parameters.store import ParameterStore
from emulator.services.codedeploy.applications import Applications
from emulator.services.codedeploy.command_queue import CommandQueue
from emulator.services.codedeploy.deployments import DeploymentService
from emulator.services.codedeploy.fleet import Fleet
from emulator.services.elb.load_balancing import LoadBalancing
from emulator.services.codepipeline.action_providers import (
    CodeBuildAction,
    CodeCommitSource,
    CodeDeployAction,
    ManualApproval,
    S3Source,
)
from emulator.services.codepipeline.executions import Executions
from emulator.services.codepipeline.pipelines import Pipelines
from emulator.services.codepipeline.s3_source_poller import S3SourcePoller
from emulator.state.database import Database
from emulator.store.object_store import ObjectStore


@dataclass
class ControlPlane:
    settings: Settings
    db: Database
    orch: Orchestrator
    store: ObjectStore
    runtime: ContainerRuntime
    repos: Repositories
    projects: Projects
    builds: BuildService
    apps: Applications
    fleet: Fleet
    queue: CommandQueue
    deployments: DeploymentService
    pipelines: Pipelines
    executions: Executions
    params: ParameterStore | None = None
    time_scale: TimeScale | None = None
    metrics: MetricStore | None = None
    alarms: Alarms | None = None
    traffic: FleetTraffic | None = None
    alarm_monitor: DeploymentAlarmMonitor | None = None
    host_metrics: HostMetrics | None = None
    batches: BatchService | None = None
    load_balancing: LoadBalancing | None = None
    s3_poller: S3SourcePoller | None = None
    handed_builds: HandedBuilds | None = None

    def on_push(self, repository: str, before: dict[str, str], after: dict[str, str]) -> list[str]:
        """A push to a watched branch starts the pipelines whose source it is."""
        started = []
        for branch, commit in after.items():
            if before.get(branch) == commit:
                continue
            changed = lambda before=before.get(branch), commit=commit: self.repos.changed_files(  # noqa: E731
                repository, before, commit)
            for pipeline, action in self.pipelines.watching(repository, branch, changed):
                started.append(self.executions.start(
                    pipeline, trigger={"triggerType": "CloudWatchEvent",
                                       "triggerDetail": f"push to {repository}/{branch} ({commit[:8]})"},
                    source_commits={action: commit}))
        return started

    def on_tags(self, repository: str, before: dict[str, str], after: dict[str, str]) -> list[str]:
        """A new or moved tag starts the pipelines whose V2 trigger push filters include it."""
        started = []
        for tag, commit in after.items():
            if before.get(tag) == commit:
                continue
            for pipeline, action in self.pipelines.watching_tag(repository, tag):
                started.append(self.executions.start(
                    pipeline, trigger={"triggerType": "WebhookV2",
                                       "triggerDetail": f"tag {tag} pushed to {repository} ({commit[:8]})"},
                    source_commits={action: commit}))
        return started

    def recover(self) -> dict[str, list[str]]:
        """Every action in flight when the last process died ends in a named state."""
        report = {
            "builds": self.builds.recover(),
            "batch-builds": self.batches.recover() if self.batches else [],
            "deployments": self.deployments.recover(),
            "executions": self.executions.recover(),
        }
        for info in self.runtime.list({LABEL_ROLE: "build"}):
            self.runtime.remove(info.id)
        for info in self.runtime.list({LABEL_ROLE: "local-build", LABEL_OWNER: WARM_OWNER}):  # made for builds never handed over
            self.runtime.remove(info.id)
        self.fleet.adopt()
        self.start_monitoring()
        return report

    def start_monitoring(self) -> None:
        """The alarm evaluator, the fleet's traffic generator, the S3 source poller and the load
        balancers' listeners and health checks run for the life of the process."""
        if self.alarms:
            self.alarms.start()
        if self.traffic:
            self.traffic.start()
        if self.s3_poller:
            self.s3_poller.start()
        if self.load_balancing:
            self.load_balancing.start()

    def shutdown(self) -> None:
        """Closes what start_monitoring opened that holds ports (the load balancers' listeners) and stops
        the local builds handed over by `pipelocal build`."""
        if self.load_balancing:
            self.load_balancing.stop()
        if self.handed_builds:
            self.handed_builds.stop_all()


def assemble(settings: Settings, runtime: ContainerRuntime, gateway: str) -> ControlPlane:
    db = Database(settings.db_path, settings.account_id, settings.region)
    orch = Orchestrator(db)
    container_store = settings.s3_advertise_url or settings.s3_endpoint or f"http://{gateway}:{settings.s3_port}"
    store = ObjectStore(settings.store_url, settings.s3_access_key, settings.s3_secret_key, settings.region,
                        container_endpoint=container_store)
    control_for_containers = settings.advertise_url or f"http://{gateway}:{settings.port}"
    endpoints = Endpoints(control_url=control_for_containers, store_url=container_store,
                          store_access_key=settings.s3_access_key, store_secret_key=settings.s3_secret_key)
    repos = Repositories(db, settings.repos_dir, settings.control_url)
    projects = Projects(db)
    params = ParameterStore(db)
    builds = BuildService(orch, projects, store, runtime, endpoints, params=params,
                          cache_dir=settings.data_dir / "cache")
    apps = Applications(db)
    queue = CommandQueue()
    fleet = Fleet(db, runtime, control_for_containers, container_env={
        "AWS_ACCESS_KEY_ID": settings.s3_access_key, "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key,
        "AWS_ENDPOINT_URL_S3": container_store, "AWS_ENDPOINT_URL": control_for_containers,
        "AWS_DEFAULT_REGION": settings.region, "AWS_REGION": settings.region,
    }, last_seen=queue.last_seen.get)
    deployments = DeploymentService(orch, apps, fleet, queue, store)
    pipelines = Pipelines(db)
    providers = {
        "CodeCommit": CodeCommitSource(repos, store),
        "CodeBuild": CodeBuildAction(builds, store),
        "CodeDeploy": CodeDeployAction(deployments),
        "S3": S3Source(store),
        "Manual": ManualApproval(),
    }
    executions = Executions(orch, pipelines, providers, settings.artifact_bucket)
    scale = TimeScale(settings.time_scale)
    metrics = MetricStore(db, scale)
    alarms = Alarms(orch, metrics, scale)
    executions.alarm_state = lambda name: alarms.get(name)["StateValue"]  # stage condition rules
    executions.time_scale = scale
    traffic = FleetTraffic(metrics, scale, fleet_targets(apps, fleet), rate=settings.traffic_rate)
    monitor = DeploymentAlarmMonitor(db, scale, settings.deploy_bake_seconds)
    deployments.alarm_monitor = monitor
    deployments.time_scale = scale
    load_balancing = LoadBalancing(db, orch, metrics, scale, range(settings.port + 20, settings.port + 70),
                                   instances=fleet.get)
    deployments.load_balancing = load_balancing
    fleet.on_terminate.append(load_balancing.forget_instance)
    return ControlPlane(settings, db, orch, store, runtime, repos, projects, builds, apps, fleet, queue,
                        deployments, pipelines, executions, params, scale, metrics, alarms, traffic, monitor,
                        HostMetrics(metrics), batches=BatchService(orch, builds),
                        s3_poller=S3SourcePoller(pipelines, executions, store, settings.s3_poll_seconds),
                        load_balancing=load_balancing,
                        handed_builds=HandedBuilds(runtime, params, settings.data_dir / "runtimes", settings.region,
                                                   settings.account_id, builds.endpoint_env(), NETWORK_NAME))

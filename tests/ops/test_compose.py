"""docker-compose.yml runs the Procfile's system in containers: checked by parsing the file,
since Docker cannot run here."""

from pathlib import Path

import pytest
import yaml

from app.runner import read_procfile

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ["worker", "beat", "web", "flower"]
SERVICES = ["redis", *PROCESSES]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def procfile() -> dict[str, str]:
    return read_procfile(ROOT / "Procfile")


def test_the_contract_services_exist(services):
    assert set(SERVICES) <= set(services)


def test_the_procfile_names_exactly_the_process_services(procfile):
    assert sorted(procfile) == sorted(PROCESSES)


def test_process_services_share_one_image_built_once_from_the_dockerfile(services):
    assert len({services[name]["image"] for name in PROCESSES}) == 1
    assert {services[name]["build"] for name in PROCESSES} == {"."}
    assert (ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize("name", PROCESSES)
def test_each_command_is_the_procfile_command_of_the_same_name(services, procfile, name):
    """The container's shell runs the Procfile line verbatim (compose turns `$$` into `$`)."""
    shell, flag, script = services[name]["command"]
    assert (shell, flag) == ("sh", "-c")
    assert script.replace("$$", "$") == f"exec {procfile[name]}"


@pytest.mark.parametrize("name", PROCESSES)
def test_redis_url_and_pipeline_home_are_passed(services, name):
    environment = services[name]["environment"]
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["PIPELINE_HOME"] == "${PIPELINE_HOME:-/data}"


@pytest.mark.parametrize("name", PROCESSES)
def test_a_named_volume_is_mounted_at_pipeline_home(compose, name):
    mounts = [volume.split(":")[:2] for volume in compose["services"][name]["volumes"]]
    assert any(source in compose["volumes"] and target == "/data" for source, target in mounts)


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_a_healthcheck(services, name):
    assert services[name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", PROCESSES)
def test_process_services_wait_for_a_healthy_redis(services, name):
    assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_web_listens_on_all_container_interfaces(services):
    assert services["web"]["environment"]["WEB_HOST"] == "0.0.0.0"


def test_flower_is_published_on_the_host_loopback_only(services):
    """Inside the container Flower listens on 0.0.0.0; the host sees it on 127.0.0.1 only."""
    flower = services["flower"]
    assert flower["environment"]["FLOWER_ADDRESS"] == "0.0.0.0"
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])


def test_flower_basic_auth_is_passed_through_from_the_host(services):
    """A key without a value: set in the container only when set on the host."""
    environment = services["flower"]["environment"]
    assert "FLOWER_BASIC_AUTH" in environment and environment["FLOWER_BASIC_AUTH"] is None


def test_prometheus_runs_only_with_the_monitoring_profile_and_scrapes_web(services):
    """`docker compose --profile monitoring up` adds it, with deploy/prometheus's files."""
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert all("profiles" not in services[name] for name in SERVICES)
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = [target for job in config["scrape_configs"] for static in job["static_configs"]
               for target in static["targets"]]
    assert targets == ["web:5000"]
    assert all((ROOT / "deploy/prometheus" / name).is_file() for name in config["rule_files"])


def test_the_s3_env_file_puts_pipeline_home_in_the_s3_profiles_bucket(services):
    """`docker compose --env-file deploy/s3.env up` turns the profile on and points every
    process at the bucket the one-shot ``bucket`` service creates."""
    settings = dict(line.split("=", 1) for line in (ROOT / "deploy/s3.env").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert settings["COMPOSE_PROFILES"] == "s3"
    assert {services["minio"]["profiles"][0], services["bucket"]["profiles"][0]} == {"s3"}
    bucket = settings["PIPELINE_HOME"].removeprefix("s3://").split("/")[0]
    assert f"store/{bucket}" in services["bucket"]["entrypoint"][-1]
    assert settings["AWS_ENDPOINT_URL"] == "http://minio:9000"
    for name in PROCESSES:
        environment = services[name]["environment"]
        assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(environment)
        assert services[name]["depends_on"]["bucket"]["required"] is False

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the whole test run (it takes seconds to start), 2 CPUs."""
    ray = pytest.importorskip(
        "ray", reason="Ray is an optional extra (pip install -e '.[ray]'); scripts/test.sh installs it"
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()

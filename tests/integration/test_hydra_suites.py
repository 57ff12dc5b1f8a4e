"""Hydra's own launcher test suites, run against kdgat_chain on the local backend.

They use Hydra's test apps (no `pipeline` node): each Hydra job is then a
one-stage chain, run through Hydra's `run_job` in Hydra's configured folder,
and the launcher returns each job's own JobReturn, as Hydra's launchers do.
"""

import pytest
from hydra.core.singleton import Singleton
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from hydra.version import VersionBase

pytestmark = pytest.mark.slow  # each job is its own process


@pytest.fixture(autouse=True)
def fresh_version_base():
    """Each suite test as in a new process: the version base other tests composed with (kdgat's 1.3) is
    Hydra's process-wide singleton, and the suites' apps expect their own (1.1's chdir into the job folder)."""
    Singleton._instances.pop(VersionBase, None)


@pytest.mark.parametrize("launcher_name, overrides", [("kdgat_chain", ["hydra.launcher.cluster=local"])])
class TestKdgatChainLauncher(LauncherTestSuite):
    pass


@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [(
    {}, ["-m", "hydra/launcher=kdgat_chain", "hydra.launcher.cluster=local", "hydra/hydra_logging=disabled",
         "hydra/job_logging=disabled"],
)])
class TestKdgatChainLauncherIntegration(IntegrationTestSuite):
    pass

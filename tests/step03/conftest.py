from tests.harness import configure_step


def pytest_configure(config):
    configure_step(config, "step03_django_integration")

"""
conftest.py — pytest fixtures for the end-to-end suite (see README.md here).

  lifeboat         a fresh lifeboatd (own tmp dir, config, data_dir, free ports), started;
                   stopped with SIGTERM at the end (exit 0 asserted) and its stderr checked for
                   sanitizer reports. Config overrides: @pytest.mark.lifeboat_config(key="value").
  make_lifeboat    factory for a lifeboatd that is configured but not started yet.
  sink, sink2      switchable aiosmtpd destinations (lbtest.Sink).
  acme             lifeboat + sink with customer acme, domain acme.test routed to sink.
  postfix_dest     a private Postfix as the customer's server (Maildir for acme.test).
  postfix_sender   factory: a private Postfix whose relayhost is a given lifeboatd.

LB_TEST_STORE=pg runs the suite against PostgreSQL: one throw-away server for the session
(tests/pg/pgserver start --fast; stopped at the end, also after failures), a database per
daemon. @pytest.mark.sqlite_only("reason") skips a test that is about SQLite itself on that pass.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import lbtest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "lifeboat_config(**settings): config keys for the lifeboat fixture")
    config.addinivalue_line("markers", "sqlite_only(reason): the test is about SQLite itself; skipped on "
                                       "the PostgreSQL pass")
    if lbtest.STORE == "invalid":
        raise pytest.UsageError(f"LB_TEST_STORE={os.environ.get('LB_TEST_STORE')!r}: use sqlite or pg")


def pytest_report_header(config):
    if lbtest.on_pg():
        return "lifeboat store: PostgreSQL (LB_TEST_STORE=pg; one tests/pg/pgserver for the session, " \
               "a database per daemon)"
    return "lifeboat store: SQLite (LB_TEST_STORE=pg for the PostgreSQL pass)"


def pytest_terminal_summary(terminalreporter):
    # Printed just above pytest's own last line, also under -q: which pass this was.
    terminalreporter.write_line("lifeboat store of this pass: " + (
        "PostgreSQL (LB_TEST_STORE=pg)" if lbtest.on_pg() else "SQLite"))


def pytest_collection_modifyitems(config, items):
    if not lbtest.on_pg():
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "about SQLite itself")
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


@pytest.fixture(autouse=True, scope="session")
def _pg_server(tmp_path_factory):
    """LB_TEST_STORE=pg: the session's PostgreSQL server (lbtest.PG)."""
    if not lbtest.on_pg():
        yield None
        return
    server = lbtest.PgServer(tmp_path_factory.mktemp("pgserver"))
    try:
        server.start()
    except AssertionError as e:
        pytest.exit(f"LB_TEST_STORE=pg: the PostgreSQL server did not start: {e}", returncode=3)
    lbtest.PG = server
    try:
        yield server
    finally:
        lbtest.PG = None
        server.stop()


@pytest.fixture(autouse=True, scope="session")
def _binaries_built():
    for binary in (lbtest.LIFEBOATD, lbtest.LIFEBOATCTL):
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} not found: build it (make test does) or set LIFEBOAT_BUILD to the build "
                        "directory", pytrace=False)


@pytest.fixture
def make_lifeboat(tmp_path, request):
    """Factory: make_lifeboat(**overrides) -> a configured, not yet started Lifeboat.
    Every instance made is stopped (SIGTERM, exit 0 asserted) and checked for sanitizer
    reports at teardown."""
    made = []
    marker = request.node.get_closest_marker("lifeboat_config")
    marker_settings = dict(marker.kwargs) if marker else {}

    def factory(**overrides):
        settings = dict(marker_settings)
        settings.update(overrides)
        lb = lbtest.Lifeboat(tmp_path / f"lifeboat{len(made)}", settings)
        made.append(lb)
        return lb

    yield factory

    problems = lbtest.finish(made)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def lifeboat(make_lifeboat):
    lb = make_lifeboat()
    lb.start()
    return lb


@pytest.fixture
def sink():
    s = lbtest.Sink("sink")
    yield s
    s.close()


@pytest.fixture
def sink2():
    s = lbtest.Sink("sink2")
    yield s
    s.close()


@pytest.fixture
def acme(lifeboat, sink):
    """lifeboat with customer acme, domain acme.test (recipient-check off) routed to sink."""
    lifeboat.add_domain("acme.test", "acme", sink.route)
    return lifeboat


@pytest.fixture
def postfix_dest():
    pf = lbtest.PostfixDestination(domains=("acme.test",))
    try:
        pf.start()
        yield pf
    finally:
        pf.cleanup()


@pytest.fixture
def postfix_sender():
    made = []

    def factory(lb):
        pf = lbtest.PostfixSender(lb.smtp_port)
        made.append(pf)
        pf.start()
        return pf

    try:
        yield factory
    finally:
        for pf in made:
            pf.cleanup()

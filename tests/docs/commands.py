"""Every shell command the docs tell a student to type, and the test that runs it (or its exact
equivalent on free ports). `test_every_command_in_the_docs_is_run_by_a_test` fails on a command
missing here, and on an entry whose test does not exist.

A value is "path::test_name" (checked to exist), or a list of them. Windows-only lines cannot run on
this Linux CI: they point at the test that runs the same command on Linux, and say so.
"""

DEMO = "tests/demo/test_demo.py::"
HOSTILE_LIMITS = "tests/hostile/test_limits.py::"
STEP4_COMMANDS = "tests/step04/test_10_monitoring.py::"
WINDOWS_SAME_AS = "windows: "
STEP2 = "tests/step02/test_celery_intro.py::"
ACTIVATE = "tests/docs/test_docs.py::test_activating_the_virtual_environment_puts_python_and_celery_on_path"
MAKE_SETUP = "tests/docs/test_docs.py::test_cheap_make_targets_run_as_typed"
HOSTS = "tests/hosts/test_hosts.py::"
DEPLOYMENT = "tests/hosts/test_deployment.py::"
GATEWAY_CONTROL = "tests/docs/test_docs.py::test_the_gateway_control_commands_on_the_reference_page_reproduce_step_4s_failures"
LAYOUT = "tests/examples/test_celery_layout.py::"

COMMANDS = {
    # The two commands, and make targets as typed.
    "make demo": DEMO + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    "make test": "tests/docs/test_docs.py::test_make_test_is_what_ci_runs",
    "make setup": "tests/docs/test_docs.py::test_cheap_make_targets_run_as_typed",
    "make help": "tests/docs/test_docs.py::test_cheap_make_targets_run_as_typed",
    "make lint": "tests/docs/test_docs.py::test_cheap_make_targets_run_as_typed",
    "make redis": DEMO + "test_make_redis_and_make_worker",
    "make worker STEP=2": DEMO + "test_make_redis_and_make_worker",
    "make flower": DEMO + "test_make_flower_serves_the_dashboard",
    "make run-step 1": DEMO + "test_make_run_step_1_waits_for_the_gateway",
    "make run-step 2": DEMO + "test_make_run_step_2_and_3_with_an_existing_redis",
    "make run-step 3": DEMO + "test_make_run_step_2_and_3_with_an_existing_redis",
    "make run-step 4": DEMO + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    "REDIS_PORT=6390 make run-step 4": DEMO + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    "WEB_PORT=8010 make demo": [
        DEMO + "test_a_port_in_use_is_named_with_the_way_out",
        DEMO + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    ],
    "REDIS_URL=redis://127.0.0.1:6390 make demo": DEMO + "test_make_run_step_2_and_3_with_an_existing_redis",
    "SMS_THROTTLE_RATE=1000/hour SMS_DAILY_LIMIT=1000 SMS_PREFIX_RATE=1000/hour make demo": DEMO
    + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    # The steps on RabbitMQ (rabbitmq.md#run): the demo tests run them on a RabbitMQ node of their own.
    "BROKER=rabbitmq make demo": DEMO + "test_make_demo_on_rabbitmq",
    "BROKER=rabbitmq make run-step 3": [
        DEMO + "test_a_missing_rabbitmq_stops_at_once_with_the_way_to_get_it",
        DEMO + "test_make_demo_on_rabbitmq",
    ],
    "make worker STEP=2 BROKER=rabbitmq": [
        DEMO + "test_a_missing_rabbitmq_stops_at_once_with_the_way_to_get_it",
        DEMO + "test_make_demo_on_rabbitmq",
    ],
    "CELERY_BROKER_URL=amqp://user:password@host:5672// make run-step 3": DEMO + "test_make_demo_on_rabbitmq",
    "BROKER=rabbitmq make test-step 4": "tests/docs/test_docs.py::test_make_test_runs_the_broker_steps_on_rabbitmq_too",
    "make test-step 1": DEMO + "test_step_dir_tests_a_students_copy",
    "make test-step 2": "tests/docs/test_docs.py::test_make_test_is_what_ci_runs",
    "make test-step 3": "tests/docs/test_docs.py::test_make_test_is_what_ci_runs",
    "make test-step 4": "tests/docs/test_docs.py::test_make_test_is_what_ci_runs",
    "make test-step 4 PYTEST_ARGS=\"-v -k 'fifty_concurrent or killed or broker_down_gives'\"": "tests/docs/test_docs.py::test_the_instructors_selection_picks_three_tests",
    "STEP_DIR=~/students/alice/step03_django_integration make test-step 3": DEMO
    + "test_step_dir_tests_a_students_copy",
    "make diff-step 2": "tests/docs/test_docs.py::test_make_diff_step_shows_the_lesson",
    "make diff-step 3": "tests/docs/test_docs.py::test_make_diff_step_shows_the_lesson",
    "make diff-step 4": "tests/docs/test_docs.py::test_make_diff_step_shows_the_lesson",
    "make docs-build": "tests/docs/test_docs.py::test_make_docs_build_is_strict_and_clean",
    "make docs-serve": "tests/docs/test_docs.py::test_make_docs_serve_serves_the_site",
    "make bench": "tests/workshop/test_bench.py::test_the_bench_runs_end_to_end_in_smoke_mode",
    "make bench QUICK=1": "tests/workshop/test_bench.py::test_the_bench_runs_end_to_end_in_smoke_mode",
    "make screenshots": "tests/browser/test_page.py::test_make_screenshots_saves_every_image_the_docs_show",
    # Exercises.
    "make start-step 2": "tests/exercises/test_exercises.py::test_start_step_copies_the_previous_step",
    "make start-step 3": "tests/exercises/test_exercises.py::test_start_step_copies_the_previous_step",
    "make start-step 4": "tests/exercises/test_exercises.py::test_start_step_copies_the_previous_step",
    "make check-step 2": "tests/exercises/test_exercises.py::test_check_step_names_what_is_missing",
    "make check-step 3": "tests/exercises/test_exercises.py::test_check_step_names_what_is_missing",
    "make check-step 4": "tests/exercises/test_exercises.py::test_the_stairs_on_an_unchanged_step_3_start_at_part_0",
    # The command each section of the step 4 page ends with, one per part.
    **{
        f"make check-step 4 PART={n}": [
            "tests/exercises/test_exercises.py::test_each_part_is_checked_alone",
            "tests/exercises/test_exercises.py::test_one_part_of_the_reference_passes_alone",
        ]
        for n in range(12)
    },
    # The virtual environment, activated by hand (setup.md#activate) for the commands typed in a step folder.
    "source .venv/bin/activate": ACTIVATE,
    # Inside a step folder.
    'python -c "from mycelery.sms.tasks import send_sms2; r = send_sms2.delay(); print(r.get(timeout=10), r.state)"': STEP2
    + "test_delay_runs_on_a_real_worker_and_the_result_backend_says_success",
    "python -c \"from mycelery.main import app; app.send_task('send_sms3').get(timeout=10)\"": STEP2
    + "test_an_unregistered_task_name_is_reported_by_the_worker_not_run",
    "cd step02_celery_intro": "tests/step02/test_celery_intro.py::test_the_worker_lists_both_task_names",
    "cd step04_final": STEP4_COMMANDS + "test_inspect_shows_the_sms_task_and_its_queue",
    "celery -A mycelery.main worker --loglevel=info": "tests/step02/test_celery_intro.py::test_the_worker_lists_both_task_names",
    "celery -A mycelery.main worker -Q sms,celery --loglevel=info": "tests/step04/test_00_post.py::test_a_post_sends_and_the_worker_delivers_the_code",
    "celery -A mycelery.main worker --loglevel=info --pool=threads": STEP4_COMMANDS
    + "test_the_windows_pool_drains_a_queue_in_time",
    "celery -A mycelery.main worker -Q sms,celery --loglevel=info --pool=threads": STEP4_COMMANDS
    + "test_the_windows_pool_drains_a_queue_in_time",
    "celery -A mycelery.main inspect registered": STEP4_COMMANDS
    + "test_inspect_shows_the_sms_task_and_its_queue",
    "celery -A mycelery.main inspect active_queues": STEP4_COMMANDS
    + "test_inspect_shows_the_sms_task_and_its_queue",
    "celery -A mycelery.main purge -f": STEP4_COMMANDS + "test_purge_empties_the_queues",
    # Looking inside (monitoring.md), against a worker started as step 4's Procfile starts it.
    **{
        f"celery -A mycelery.main inspect {command}": STEP4_COMMANDS
        + "test_inspect_active_reserved_stats_and_scheduled"
        for command in ("active", "reserved", "scheduled", "stats")
    },
    **{
        line: STEP4_COMMANDS + "test_events_and_events_dump_show_the_task_with_only_its_ref"
        for line in (
            "celery -A mycelery.main control enable_events",
            "celery -A mycelery.main events",
            "celery -A mycelery.main events --dump",
        )
    },
    "python manage.py check --deploy": "tests/step04/test_09_settings.py::test_check_deploy_is_clean_in_production_mode",
    "DJANGO_DEBUG=0 DJANGO_SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(50))')\" DJANGO_ALLOWED_HOSTS=sms.example.com python manage.py check --deploy": "tests/step04/test_09_settings.py::test_check_deploy_is_clean_in_production_mode",
    # Talking to the running demo (the demo test sends the same requests on its free ports).
    # The chapter's GET: steps 1-3 send with it; step 4 answers it 405.
    "curl -i http://127.0.0.1:8000/users/sms/13800138000/": [
        DEMO + "test_make_run_step_1_waits_for_the_gateway",
        HOSTILE_LIMITS + "test_the_chapters_get_and_head_send_nothing_through_the_server",
    ],
    'curl -i -H "Content-Type: application/json" -d \'{"mobile": "13800138000"}\' http://127.0.0.1:8000/users/sms/': [
        DEMO + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
        LAYOUT + "test_a_post_returns_at_once_and_the_worker_sends_the_code",
    ],
    'curl -i -H "Accept-Language: en" -H "Content-Type: application/json" -d \'{"mobile": "12345"}\' http://127.0.0.1:8000/users/sms/': HOSTILE_LIMITS
    + "test_messages_follow_accept_language_through_the_server",
    "make test-hostile": "tests/docs/test_docs.py::test_make_test_is_what_ci_runs",
    "curl -i http://127.0.0.1:8000/healthz": DEMO
    + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    'curl -i -H "Content-Type: application/json" -d \'{"mobile": "13800138000", "code": "012345"}\' http://127.0.0.1:8000/users/sms/verify/': DEMO
    + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    # Windows (PowerShell): the same commands as above, which the Linux tests run.
    "curl.exe -i http://127.0.0.1:8000/users/sms/13800138000/": [
        WINDOWS_SAME_AS + DEMO + "test_make_run_step_1_waits_for_the_gateway",
        WINDOWS_SAME_AS + HOSTILE_LIMITS + "test_the_chapters_get_and_head_send_nothing_through_the_server",
    ],
    'Invoke-RestMethod -Method Post -Uri http://127.0.0.1:8000/users/sms/ -ContentType application/json -Body \'{"mobile": "13800138000"}\'': [
        WINDOWS_SAME_AS + DEMO + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
        WINDOWS_SAME_AS + LAYOUT + "test_a_post_returns_at_once_and_the_worker_sends_the_code",
    ],
    'Invoke-RestMethod -Method Post -Uri http://127.0.0.1:8000/users/sms/ -ContentType application/json -Headers @{"Accept-Language" = "en"} -Body \'{"mobile": "12345"}\'': WINDOWS_SAME_AS
    + HOSTILE_LIMITS
    + "test_messages_follow_accept_language_through_the_server",
    "curl.exe -i http://127.0.0.1:8000/healthz": WINDOWS_SAME_AS
    + DEMO
    + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    'Invoke-RestMethod -Method Post -Uri http://127.0.0.1:8000/users/sms/verify/ -ContentType application/json -Body \'{"mobile": "13800138000", "code": "012345"}\'': WINDOWS_SAME_AS
    + DEMO
    + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    '$env:DJANGO_DEBUG = "0"': WINDOWS_SAME_AS
    + "tests/step04/test_09_settings.py::test_check_deploy_is_clean_in_production_mode",
    '$env:DJANGO_SECRET_KEY = python -c "import secrets; print(secrets.token_urlsafe(50))"': WINDOWS_SAME_AS
    + "tests/step04/test_09_settings.py::test_check_deploy_is_clean_in_production_mode",
    '$env:DJANGO_ALLOWED_HOSTS = "sms.example.com"': WINDOWS_SAME_AS
    + "tests/step04/test_09_settings.py::test_check_deploy_is_clean_in_production_mode",
    "Remove-Item Env:DJANGO_DEBUG, Env:DJANGO_SECRET_KEY, Env:DJANGO_ALLOWED_HOSTS": WINDOWS_SAME_AS
    + "tests/step04/test_09_settings.py::test_check_deploy_is_clean_in_production_mode",
    # Windows without make (setup.md#windows): what `make setup` and the Procfiles do, by hand.
    ".venv\\Scripts\\Activate.ps1": WINDOWS_SAME_AS + ACTIVATE,
    "py -m venv .venv": WINDOWS_SAME_AS + MAKE_SETUP,
    'pip install "Django>=5.2,<5.3" "djangorestframework>=3.15,<4" "celery[redis]>=5.5,<6" "kombu>=5.7,<6" "redis>=5.0,<8" "django-redis>=5.4,<8" "ronglian_sms_sdk>=1.0,<2" "requests>=2.31,<3" "flower>=2.0,<3"': [
        WINDOWS_SAME_AS + MAKE_SETUP,
        "tests/docs/test_docs.py::test_the_windows_install_line_asks_for_what_pyproject_pins",
    ],
    # The tests export the same three variables for every step (tests/harness.py), and this test reads them.
    '$env:REDIS_URL = "redis://192.168.1.20:6379"': WINDOWS_SAME_AS
    + STEP2
    + "test_config_uses_redis_db_15_and_14_overridable_from_the_environment",
    '$env:CELERY_BROKER_URL = "redis://192.168.1.20:6379/15"': WINDOWS_SAME_AS
    + STEP2
    + "test_config_uses_redis_db_15_and_14_overridable_from_the_environment",
    '$env:CELERY_RESULT_BACKEND = "redis://192.168.1.20:6379/14"': WINDOWS_SAME_AS
    + STEP2
    + "test_config_uses_redis_db_15_and_14_overridable_from_the_environment",
    # The Procfiles' `gateway` and `web` lines, which the demo runs.
    "python -m workshop.gateway": [
        WINDOWS_SAME_AS
        + "tests/workshop/test_gateway.py::test_the_command_line_gateway_starts_stops_and_names_a_busy_port",
        WINDOWS_SAME_AS + DEMO + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
    ],
    "python manage.py runserver": [
        WINDOWS_SAME_AS + DEMO + "test_make_demo_starts_step_4_and_ctrl_c_stops_everything",
        LAYOUT + "test_a_post_returns_at_once_and_the_worker_sends_the_code",
    ],
    # Celery's own layout (layout.md): the example project, run in its folder on free ports.
    "cd docs/examples/celery_layout": LAYOUT + "test_the_worker_finds_users_tasks_through_installed_apps",
    "celery -A renranapi worker -Q sms,celery --loglevel=info": LAYOUT
    + "test_the_worker_finds_users_tasks_through_installed_apps",
    "celery -A renranapi worker -Q sms,celery --loglevel=info --pool=threads": WINDOWS_SAME_AS
    + LAYOUT
    + "test_the_worker_finds_users_tasks_through_installed_apps",
    "python manage.py check": LAYOUT + "test_manage_py_check_passes",
    # Gateway faults by hand (reference.md#gateway), run on a free port.
    **{
        line: GATEWAY_CONTROL
        for line in (
            'curl -X POST -H "Content-Type: application/json" -d \'{"fail_next": 2, "fail_mode": "172001"}\' http://127.0.0.1:8881/_control',
            'curl -X POST -H "Content-Type: application/json" -d \'{"hold": true}\' http://127.0.0.1:8881/_control',
            "curl -X POST http://127.0.0.1:8881/_control/release",
            "curl http://127.0.0.1:8881/_control",
        )
    },
    **{
        line: WINDOWS_SAME_AS + GATEWAY_CONTROL
        for line in (
            'Invoke-RestMethod -Method Post -Uri http://127.0.0.1:8881/_control -ContentType application/json -Body \'{"fail_next": 2, "fail_mode": "172001"}\'',
            "Invoke-RestMethod -Method Post -Uri http://127.0.0.1:8881/_control -ContentType application/json -Body '{\"hold\": true}'",
            "Invoke-RestMethod -Method Post -Uri http://127.0.0.1:8881/_control/release",
            "Invoke-RestMethod http://127.0.0.1:8881/_control",
        )
    },
    # More than one machine (hosts.md): the test hosts run the page's files as these commands would.
    "sudo nft -f /etc/nftables.d/broker.nft": "tests/hosts/test_broker_host.py::"
    + "test_the_firewall_rule_opens_the_brokers_ports_to_the_web_and_worker_hosts_only",
    'python -c "import secrets; print(secrets.token_urlsafe(50))"': DEPLOYMENT
    + "test_the_environment_file_passes_check_deploy",
    # No systemd on the test hosts: the unit is checked by systemd-analyze, and its ExecStart is run with its
    # EnvironmentFile and WorkingDirectory; `stop` is SIGTERM to the main process, as KillMode=mixed sends it.
    "sudo systemctl daemon-reload && sudo systemctl enable --now sms-worker": [
        DEPLOYMENT + "test_systemd_accepts_the_unit",
        HOSTS + "test_sends_from_the_web_host_are_shared_by_both_worker_hosts_and_each_arrives_once",
    ],
    "sudo systemctl daemon-reload && sudo systemctl enable --now sms-web": [
        DEPLOYMENT + "test_systemd_accepts_the_unit",
        HOSTS + "test_healthz_on_the_web_host_lists_both_worker_hosts",
    ],
    "sudo systemctl stop sms-worker": HOSTS + "test_sigterm_as_systemd_sends_it_lets_the_running_send_finish",
    "celery -A mycelery.main inspect ping": HOSTS
    + "test_celery_inspect_ping_from_the_web_host_sees_both_worker_hosts",
    "set -a; . /etc/renran/sms.env; set +a": HOSTS
    + "test_celery_inspect_ping_from_the_web_host_sees_both_worker_hosts",
    'curl -i -H "Host: sms.example.com" -H "X-Forwarded-Proto: https" http://127.0.0.1:8000/healthz': HOSTS
    + "test_healthz_on_the_web_host_lists_both_worker_hosts",
    # The RabbitMQ half of the hosts' tests creates the workers' user with these, through rabbitmqctl.
    "sudo rabbitmqctl add_user sms 'change-me-broker-password'": HOSTS
    + "test_sends_from_the_web_host_are_shared_by_both_worker_hosts_and_each_arrives_once",
    'sudo rabbitmqctl set_permissions -p / sms ".*" ".*" ".*"': HOSTS
    + "test_sends_from_the_web_host_are_shared_by_both_worker_hosts_and_each_arrives_once",
    # Testing your own tasks (testing.md): `pytest -v` in a copy of step 4 holding the examples, with REDIS_URL
    # naming a Redis on a free port; `make redis` with REDIS_PORT is what the demo test runs.
    "pytest -v": "tests/examples/test_testing_examples.py::test_pytest_v_in_the_project_runs_exactly_the_examples_and_passes",
    "REDIS_URL=redis://127.0.0.1:6390 pytest -v": "tests/examples/test_testing_examples.py::test_pytest_v_in_the_project_runs_exactly_the_examples_and_passes",
    "REDIS_PORT=6390 make redis": DEMO + "test_make_redis_and_make_worker",
    # Running workers for real (workers.md): the rate limit set on two step 4 workers; the shutdown example in its
    # folder, on a Redis of the test's own; Flower's unit checked by systemd-analyze and run as systemd would.
    "celery -A mycelery.main control rate_limit mycelery.sms.tasks.send_sms 1/m": STEP4_COMMANDS
    + "test_control_rate_limit_holds_each_worker_to_it_on_its_own",
    "cd docs/examples/workers": "tests/examples/test_workers.py::test_ctrl_c_once_finishes_the_task_twice_gives_its_message_back",
    "celery -A stopping worker --loglevel=info": [
        "tests/examples/test_workers.py::test_ctrl_c_once_finishes_the_task_twice_gives_its_message_back",
        "tests/examples/test_workers.py::test_a_prefork_child_killed_mid_task_has_its_task_run_again",
    ],
    "celery -A stopping worker --loglevel=info --pool=threads": "tests/examples/test_workers.py::test_ctrl_c_once_finishes_the_task_twice_gives_its_message_back",
    'python -c "from stopping import send_slowly; send_slowly.delay()"': "tests/examples/test_workers.py::test_ctrl_c_once_finishes_the_task_twice_gives_its_message_back",
    "sudo systemctl daemon-reload && sudo systemctl enable --now sms-flower": [
        DEPLOYMENT + "test_systemd_accepts_the_unit",
        DEPLOYMENT + "test_flower_run_as_the_unit_runs_it_asks_for_the_password_in_the_environment_file",
    ],
}

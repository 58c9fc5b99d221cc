//! The workload's process: hostname, environment, cwd, argv and stdio, from the config and the
//! command-line overrides (`-e`, `--hostname`, `--`).

use boxr_tests::{Boxr, Config, HostHostname, Scratch, TEST_PATH, toml_array, unique};

/// Runs `boxr run --config CONFIG EXTRA...` and returns its stdout, asserting success.
fn run(config: &Config, extra: &[&str]) -> String {
    let scratch = Scratch::new("process");
    Boxr::run(&scratch.config(config)).args(extra).output().ok().to_string()
}

/// The workload's exact environment (`env` exec'd directly, so no shell adds to it), sorted.
fn environment(config: &Config, flags: &[&str]) -> Vec<String> {
    let args: Vec<&str> = flags.iter().copied().chain(["--", "/bin/busybox", "env"]).collect();
    let mut env: Vec<String> = run(config, &args).lines().map(String::from).collect();
    env.sort();
    env
}

fn hostname_config(name: &str) -> Config {
    Config::new().set("hostname", &format!("\"{name}\""))
}

#[test]
fn hostname_comes_from_the_config() {
    let host = HostHostname::save();
    let out = run(
        &hostname_config("boxr-box"),
        &["--", "/bin/sh", "-c", "hostname; cat /proc/sys/kernel/hostname"],
    );
    host.assert_unchanged();
    assert_eq!(out, "boxr-box\nboxr-box\n");
}

#[test]
fn hostname_flag_overrides_the_config() {
    let out =
        run(&hostname_config("from-config"), &["--hostname", "from-flag", "--", "/bin/hostname"]);
    assert_eq!(out, "from-flag\n");
}

#[test]
fn hostname_changed_inside_stays_inside() {
    let host = HostHostname::save();
    let name = format!("changed-{}", unique());
    // sethostname needs CAP_SYS_ADMIN, which the default set lacks.
    let config = Config::new().process("cap_add", "[\"SYS_ADMIN\"]");
    let out = run(&config, &["--", "/bin/sh", "-c", &format!("hostname {name} && hostname")]);
    host.assert_unchanged();
    assert_eq!(out, format!("{name}\n"));
}

#[test]
fn environment_is_exactly_the_configs() {
    let config = Config::new().env(&["FOO=bar", "PATH=/bin", "EMPTY="]);
    // Nothing of boxr's own environment may leak into the container.
    let scratch = Scratch::new("env-leak");
    let out = Boxr::run(&scratch.config(&config))
        .env("BOXR_TEST_LEAK", "leaked")
        .command(&["/bin/busybox", "env"])
        .output();
    let mut env: Vec<&str> = out.ok().lines().collect();
    env.sort();
    assert_eq!(env, ["EMPTY=", "FOO=bar", "HOME=/root", "PATH=/bin"], "\n{out}");
}

#[test]
fn path_and_home_are_added_when_missing() {
    let env = environment(&Config::new().unset("env"), &[]);
    assert_eq!(env.len(), 2, "{env:?}");
    assert_eq!(env[0], "HOME=/root");
    let path = env[1].strip_prefix("PATH=").unwrap_or_else(|| panic!("no PATH: {env:?}"));
    assert!(path.split(':').any(|d| d == "/bin"), "default PATH lacks /bin: {path}");
}

#[test]
fn home_from_the_config_is_kept() {
    let env = environment(&Config::new().env(&[TEST_PATH, "HOME=/tmp"]), &[]);
    assert_eq!(env, ["HOME=/tmp", TEST_PATH]);
}

#[test]
fn env_flags_add_and_override() {
    let config = Config::new().env(&[TEST_PATH, "FOO=from-config", "KEEP=1"]);
    let env = environment(&config, &["-e", "FOO=from-flag", "-e", "NEW=a=b", "-e", "HOME=/home"]);
    assert_eq!(env, ["FOO=from-flag", "HOME=/home", "KEEP=1", "NEW=a=b", TEST_PATH]);
}

#[test]
fn cwd_comes_from_the_config() {
    let out = run(&Config::new().process("cwd", "\"/tmp\""), &["--", "/bin/busybox", "pwd"]);
    assert_eq!(out, "/tmp\n");
    let out = run(&Config::new(), &["--", "/bin/busybox", "pwd"]);
    assert_eq!(out, "/\n", "the default cwd is /");
}

#[test]
fn args_come_from_the_config_unless_given_after_double_dash() {
    let config = Config::new().args(&["/bin/busybox", "echo", "from-config"]);
    assert_eq!(run(&config, &[]), "from-config\n");
    assert_eq!(run(&config, &["--", "/bin/busybox", "echo", "from-flag"]), "from-flag\n");
}

#[test]
fn args_reach_the_workload_verbatim() {
    let args = ["a b", "", "c\"d", "$HOME", "*", "-e", "--", "ünï"];
    let argv: Vec<&str> = ["/bin/busybox", "printf", "[%s]"].into_iter().chain(args).collect();
    let expected: String = args.iter().map(|a| format!("[{a}]")).collect();
    assert_eq!(run(&Config::new(), &[&["--"], &argv[..]].concat()), expected, "via --");
    assert_eq!(
        run(&Config::new().process("args", &toml_array(&argv)), &[]),
        expected,
        "via the config"
    );
}

#[test]
fn stdio_is_the_callers() {
    let scratch = Scratch::new("stdio");
    let script = "read line; echo \"got $line\"; echo oops >&2; cat";
    let out = Boxr::run(&scratch.config(&Config::new()))
        .command(&["/bin/sh", "-c", script])
        .stdin("first\nsecond\nthird\n")
        .output();
    assert_eq!(out.ok(), "got first\nsecond\nthird\n");
    assert_eq!(out.stderr, "oops\n");
}

#[test]
fn command_without_slash_is_looked_up_on_the_containers_path() {
    assert_eq!(
        run(&Config::new().env(&["PATH=/nowhere:/bin"]), &["--", "echo", "found"]),
        "found\n"
    );
    let scratch = Scratch::new("path-lookup");
    let config = scratch.config(&Config::new().env(&["PATH=/nowhere"]));
    Boxr::run(&config).command(&["echo", "found"]).output().expect_code(127);
}

//! Whether a buildspec runs Docker: a command that runs `docker`, `docker-compose` or `dockerd`
//! (`docker buildx` is `docker`; an image's `start-dockerd` helper counts too), or `runtime-versions` asking for the `docker` runtime (as
//! CodeBuild's older images had it). AWS Lambda cannot run Docker (no privileged mode, no user
//! namespaces), so such a build is placed where it can run.
//!
//! A command runs a program when the program's name (or a path ending in it) is the first word
//! of one of its simple commands: the text is cut at `;`, `&`, `|`, newlines, `(`, `)` and
//! backquotes, quotes are dropped, and leading assignments (`A=1`), wrappers (`sudo`, `time`,
//! `nohup`, `exec`, `env`, `timeout 15`, `sh -c`) and keywords (`if`, `then`, `do`, `until`,
//! `!`, …) are passed over. A command that runs Docker only inside a script or a `make` target is not seen.

use super::{BuildSpec, PhaseName};

/// The programs that need a Docker daemon.
const DOCKER: [&str; 3] = ["docker", "docker-compose", "dockerd"];

/// Words passed over before a simple command's program.
const SKIPPED: [&str; 20] = [
    "sudo", "time", "nohup", "exec", "env", "command", "builtin", "sh", "bash", "-c", "if", "then",
    "else", "elif", "do", "while", "until", "!", "{", "}",
];

/// Where a buildspec runs Docker: the key (`phases.build.commands[0]`), the buildspec's line and
/// the command's first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerUse {
    pub key: String,
    pub line: usize,
    pub command: String,
}

/// The first place `spec` runs Docker, if it does.
pub fn docker_use(spec: &BuildSpec) -> Option<DockerUse> {
    for name in PhaseName::ALL {
        let Some(phase) = spec.phases.get(name) else {
            continue;
        };
        if name == PhaseName::Install {
            if let Some((runtime, _)) = phase.runtime_versions.iter().find(|(r, _)| r == "docker") {
                return Some(DockerUse {
                    key: format!("phases.install.runtime-versions.{runtime}"),
                    line: 0,
                    command: format!("runtime-versions: {runtime}"),
                });
            }
        }
        for (list, commands) in [("commands", &phase.commands), ("finally", &phase.finally)] {
            if let Some((i, command)) = commands
                .iter()
                .enumerate()
                .find(|(_, c)| runs_docker(&c.text))
            {
                return Some(DockerUse {
                    key: format!("phases.{}.{list}[{i}]", name.key()),
                    line: command.line,
                    command: command.text.lines().next().unwrap_or_default().to_string(),
                });
            }
        }
    }
    None
}

/// Whether a command's text runs Docker (see the module's rule).
pub fn runs_docker(text: &str) -> bool {
    let unquoted: String = text.chars().filter(|c| !matches!(c, '"' | '\'')).collect();
    unquoted
        .split([';', '&', '|', '\n', '(', ')', '`'])
        .any(|simple| program(simple).is_some_and(is_docker))
}

/// The program a simple command runs: its first word that is no assignment, wrapper or keyword.
fn program(simple: &str) -> Option<&str> {
    let mut words = simple.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let assignment = word
            .split_once('=')
            .is_some_and(|(name, _)| crate::names::is_variable_name(name));
        if assignment || SKIPPED.contains(&word) {
            continue;
        }
        if word == "timeout" {
            // `timeout [-s SIGNAL] DURATION PROGRAM …`
            while words.peek().is_some_and(|w| w.starts_with('-')) {
                words.next();
            }
            words.next();
            continue;
        }
        return Some(word);
    }
    None
}

fn is_docker(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    // `start-dockerd` and the like: an image's helper that starts the daemon.
    DOCKER.contains(&name) || name.ends_with("-dockerd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn case(text: &str, want: bool) {
        assert_eq!(runs_docker(text), want, "{text:?}");
    }

    #[test]
    fn commands_that_run_docker_are_found_wherever_they_stand() {
        case("docker build .", true);
        case("docker buildx build --push .", true);
        case("docker-compose up -d", true);
        case(
            "nohup /usr/bin/dockerd --host=unix:///var/run/docker.sock &",
            true,
        );
        case(
            "echo $PASSWORD | docker login --username u --password-stdin",
            true,
        );
        case(
            "timeout 15 sh -c \"until docker info; do echo .; sleep 1; done\"",
            true,
        );
        case("TAG=1 sudo docker push repo:$TAG", true);
        case("if true; then docker pull x; fi", true);
        case("VERSION=$(docker version -f '{{.Server.Version}}')", true);
        case("start-dockerd", true);
        case("make docker-release", false);
        case("echo docker", false);
        case("cd docker", false);
        case("TAG=$(docker/git-to-docker-tag.sh main abc)", false);
        case(
            "checkov -f code/app/Dockerfile --framework dockerfile",
            false,
        );
        case("npm test", false);
    }

    #[test]
    fn the_first_use_is_named_by_key_and_line() {
        let spec = crate::buildspec::parse(
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n      - docker build -t app .\n",
        )
        .expect("parses")
        .spec;
        let found = docker_use(&spec).expect("found");
        assert_eq!(found.key, "phases.build.commands[1]");
        assert_eq!(found.line, 6);
        assert_eq!(found.command, "docker build -t app .");
        let runtime = crate::buildspec::parse(
            "buildspec.yml",
            "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      docker: 18\n",
        )
        .expect("parses")
        .spec;
        let found = docker_use(&runtime).expect("found");
        assert_eq!(found.key, "phases.install.runtime-versions.docker");
    }
}

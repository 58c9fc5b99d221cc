//! `cgroup_parent` and `[resources]` with the docker-named `boxr run` flags on top.

use super::*;

impl Checker<'_> {
    pub(super) fn cgroup_parent(
        &self,
        raw: Option<Spanned<String>>,
    ) -> Result<String, ConfigError> {
        let Some(raw) = raw else { return Ok(DEFAULT_CGROUP_PARENT.to_string()) };
        let value = raw.get_ref();
        let ok = !value.is_empty()
            && !value.split('/').any(|p| p == ".." || p == ".")
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
        if !ok || value == "/" {
            return Err(self.src.error(
                raw.span(),
                format!("cgroup_parent {value:?}: give a cgroup path such as \"/boxr\" (letters, digits, '_', '.', '-', no '..')"),
            ));
        }
        Ok(value.trim_end_matches('/').to_string())
    }
    /// `[resources]` with the command-line flags on top, checked as the kernel would.
    pub(super) fn resources(
        &self,
        t: RawResourceTable,
        flags: &ResourceFlags,
    ) -> Result<Resources, ConfigError> {
        let mut spans: Vec<(Field, Range<usize>)> = Vec::new();
        let mut take = |field: Field, span: Option<Range<usize>>| {
            if let Some(span) = span {
                spans.push((field, span));
            }
        };
        take(Field::Memory, t.memory.as_ref().map(Spanned::span));
        take(Field::MemorySwap, t.memory_swap.as_ref().map(Spanned::span));
        take(Field::Cpus, t.cpus.as_ref().map(Spanned::span));
        take(Field::CpuShares, t.cpu_shares.as_ref().map(Spanned::span));
        take(Field::CpuWeight, t.cpu_weight.as_ref().map(Spanned::span));
        take(Field::CpusetCpus, t.cpuset_cpus.as_ref().map(Spanned::span));
        take(Field::PidsLimit, t.pids_limit.as_ref().map(Spanned::span));
        let size =
            |v: Option<Spanned<RawSize>>, field: Field| -> Result<Option<i64>, ConfigError> {
                let Some(v) = v else { return Ok(None) };
                match v.get_ref() {
                    RawSize::Bytes(n) => Ok(Some(*n)),
                    RawSize::Text(t) => parse_size_text(t)
                        .and_then(|n| i64::try_from(n).map_err(|_| format!("{t:?} is too large")))
                        .map(Some)
                        .map_err(|m| self.src.error(v.span(), format!("resources.{field}: {m}"))),
                }
            };
        let mut raw = RawResources {
            memory: size(t.memory, Field::Memory)?,
            memory_swap: size(t.memory_swap, Field::MemorySwap)?,
            cpus: t.cpus.map(Spanned::into_inner),
            cpu_shares: t.cpu_shares.map(Spanned::into_inner),
            cpu_weight: t.cpu_weight.map(Spanned::into_inner),
            cpuset_cpus: t.cpuset_cpus.map(Spanned::into_inner),
            pids_limit: t.pids_limit.map(Spanned::into_inner),
        };
        let mut from_flag = Vec::new();
        apply_resource_flags(&mut raw, flags, &mut from_flag)?;
        let online =
            fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_else(|_| "0".into());
        resources::check(&raw, &online).map_err(|(field, message)| {
            if let Some(flag) = from_flag.iter().find(|(f, _)| *f == field).map(|(_, flag)| flag) {
                return ConfigError { at: flag.to_string(), message };
            }
            match spans.iter().find(|(f, _)| *f == field) {
                Some((_, span)) => {
                    self.src.error(span.clone(), format!("resources.{field}: {message}"))
                }
                None => ConfigError {
                    at: self.src.file.display().to_string(),
                    message: format!("resources.{field}: {message}"),
                },
            }
        })
    }
}

/// Puts the `boxr run` resource flags over the config's values, noting which came from a flag.
fn apply_resource_flags(
    raw: &mut RawResources,
    flags: &ResourceFlags,
    from_flag: &mut Vec<(Field, &'static str)>,
) -> Result<(), ConfigError> {
    fn parsed<T>(
        value: &Option<String>,
        flag: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        value
            .as_deref()
            .map(|v| parse(v).map_err(|message| ConfigError { at: flag.to_string(), message }))
            .transpose()
    }
    let size = |v: &str| -> Result<i64, String> {
        if v.trim() == "-1" {
            return Ok(-1);
        }
        parse_size_text(v).and_then(|n| i64::try_from(n).map_err(|_| format!("{v:?} is too large")))
    };
    let int = |v: &str| v.trim().parse::<i64>().map_err(|_| format!("{v:?} is not a whole number"));
    let float = |v: &str| {
        v.trim().parse::<f64>().map_err(|_| format!("{v:?} is not a number of CPUs such as 0.5"))
    };
    let mut set = |field: Field, flag: &'static str, present: bool| {
        if present {
            from_flag.push((field, flag));
        }
    };
    set(Field::Memory, "--memory", flags.memory.is_some());
    set(Field::MemorySwap, "--memory-swap", flags.memory_swap.is_some());
    set(Field::Cpus, "--cpus", flags.cpus.is_some());
    set(Field::CpuShares, "--cpu-shares", flags.cpu_shares.is_some());
    set(Field::CpusetCpus, "--cpuset-cpus", flags.cpuset_cpus.is_some());
    set(Field::PidsLimit, "--pids-limit", flags.pids_limit.is_some());
    if let Some(v) = parsed(&flags.memory, "--memory", size)? {
        raw.memory = Some(v);
    }
    if let Some(v) = parsed(&flags.memory_swap, "--memory-swap", size)? {
        raw.memory_swap = Some(v);
    }
    if let Some(v) = parsed(&flags.cpus, "--cpus", float)? {
        raw.cpus = Some(v);
    }
    if let Some(v) = parsed(&flags.cpu_shares, "--cpu-shares", int)? {
        raw.cpu_shares = Some(v);
        raw.cpu_weight = None;
    }
    if let Some(v) = parsed(&flags.cpuset_cpus, "--cpuset-cpus", |v| Ok(v.to_string()))? {
        raw.cpuset_cpus = Some(v);
    }
    if let Some(v) = parsed(&flags.pids_limit, "--pids-limit", int)? {
        raw.pids_limit = Some(v);
    }
    Ok(())
}

//! `namespaces` and `[network]` with `--network` and `-p`: the network mode decides the "net"
//! namespace.

use super::*;

impl Checker<'_> {
    /// `[network]` with `--network` and `-p` on top. The mode decides the "net" namespace: with
    /// the default namespaces, or with `--network`, it is added or removed to match; a config
    /// whose own `namespaces` contradict its own mode is refused.
    pub(super) fn network(
        &self,
        raw: Option<Spanned<RawNetwork>>,
        overrides: &Overrides,
        namespaces: &mut Vec<Namespace>,
        explicit_namespaces: Option<Range<usize>>,
    ) -> Result<network::Settings, ConfigError> {
        let (table, raw) = match raw {
            Some(t) => (Some(t.span()), t.into_inner()),
            None => (None, RawNetwork::default()),
        };
        let flag = match overrides.network.as_deref() {
            Some(m) => Some(Mode::parse(m).ok_or_else(|| ConfigError {
                at: "--network".into(),
                message: format!("unknown network mode {m:?}: use none, host or bridge"),
            })?),
            None => None,
        };
        let has_net = namespaces.contains(&Namespace::Net);
        let file_mode = match (&raw.mode, &table) {
            (Some(mode), _) => Some((*mode.get_ref(), mode.span())),
            (None, Some(span)) => Some((Mode::Bridge, span.clone())),
            (None, None) => None,
        };
        let mode = match (flag, &file_mode) {
            (Some(mode), _) => mode,
            (None, Some((mode, _))) => *mode,
            (None, None) if has_net => Mode::None,
            (None, None) => Mode::Host,
        };
        if (mode != Mode::Host) != has_net {
            if let (None, Some(_), Some((_, span))) = (flag, &explicit_namespaces, &file_mode) {
                let message = if has_net {
                    "network mode \"host\" shares the host's network: remove \"net\" from namespaces"
                        .to_string()
                } else {
                    format!(
                        "network mode \"{}\" needs the \"net\" namespace: add \"net\" to namespaces",
                        mode.name()
                    )
                };
                return Err(self.src.error(span.clone(), message));
            }
            if has_net {
                namespaces.retain(|ns| *ns != Namespace::Net);
            } else {
                namespaces.push(Namespace::Net);
            }
        }
        // Bridge settings in a config whose own mode is another are a mistake; with another
        // mode from --network they are just not used.
        let bridge_only = |span: Range<usize>, key: &str| -> Result<(), ConfigError> {
            match &file_mode {
                Some((file_mode, _)) if *file_mode != Mode::Bridge && flag.is_none() => {
                    Err(self.src.error(
                        span,
                        format!(
                            "network.{key} applies to bridge mode only, and mode is \"{}\"",
                            file_mode.name()
                        ),
                    ))
                }
                _ => Ok(()),
            }
        };
        let bridge = match raw.bridge {
            Some(name) => {
                bridge_only(name.span(), "bridge")?;
                network::check_bridge_name(name.get_ref())
                    .map_err(|m| self.src.error(name.span(), format!("network.bridge: {m}")))?;
                name.into_inner()
            }
            None => network::DEFAULT_BRIDGE.to_string(),
        };
        let subnet = match raw.subnet {
            Some(text) => {
                bridge_only(text.span(), "subnet")?;
                let subnet = Subnet::parse(text.get_ref())
                    .and_then(|s| match mode {
                        Mode::Bridge => network::check_subnet_free(s, &bridge).map(|()| s),
                        _ => Ok(s),
                    })
                    .map_err(|m| self.src.error(text.span(), format!("network.subnet: {m}")))?;
                Some(subnet)
            }
            None => None,
        };
        let mut ports = Vec::new();
        let mut origins = Vec::new();
        if let Some(list) = raw.ports {
            bridge_only(list.span(), "ports")?;
            for entry in list.into_inner() {
                let port = PortMapping::parse(entry.get_ref())
                    .map_err(|m| self.src.error(entry.span(), format!("network.ports: {m}")))?;
                ports.push(port);
                origins.push(self.src.at(entry.span()));
            }
        }
        for text in &overrides.publish {
            let at = format!("-p {text}");
            let port = PortMapping::parse(text)
                .map_err(|message| ConfigError { at: at.clone(), message })?;
            if mode != Mode::Bridge {
                return Err(ConfigError {
                    at,
                    message: format!(
                        "publishing a port needs bridge mode, and the network mode is \"{}\": use --network bridge",
                        mode.name()
                    ),
                });
            }
            ports.push(port);
            origins.push(at);
        }
        ports::check_distinct(&ports)
            .map_err(|(i, message)| ConfigError { at: origins[i].clone(), message })?;
        if mode != Mode::Bridge {
            ports.clear();
        }
        Ok(network::Settings { mode, bridge, subnet, ports })
    }
    pub(super) fn namespaces(
        &self,
        raw: Option<Spanned<Vec<Spanned<Namespace>>>>,
    ) -> Result<Vec<Namespace>, ConfigError> {
        let Some(raw) = raw else { return Ok(DEFAULT_NAMESPACES.to_vec()) };
        let mut namespaces = Vec::new();
        for ns in raw.get_ref() {
            if namespaces.contains(ns.get_ref()) {
                return Err(self.src.error(
                    ns.span(),
                    format!("namespace \"{}\" is listed twice", ns.get_ref().name()),
                ));
            }
            namespaces.push(*ns.get_ref());
        }
        let need = |ns: Namespace, why: &str| {
            if namespaces.contains(&ns) {
                Ok(())
            } else {
                Err(self
                    .src
                    .error(raw.span(), format!("namespaces must include \"{}\": {why}", ns.name())))
            }
        };
        need(
            Namespace::Mount,
            "boxr sets up the container's mounts and pivots into the rootfs in its own mount namespace",
        )?;
        if namespaces.contains(&Namespace::User) {
            need(
                Namespace::Pid,
                "with \"user\", /proc can only be mounted for a PID namespace the container owns",
            )?;
        }
        Ok(namespaces)
    }
}

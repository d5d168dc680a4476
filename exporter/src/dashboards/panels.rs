//! The panels of the three dashboards, declared with their queries: what each dashboard shows.
//! Which causes a panel evidences is derived, not written here (`grafana.rs`).

#[derive(Clone, Copy)]
pub enum Viz {
    TimeSeries,
    /// An instant query shown as a table, one row per series.
    Table,
}

pub struct Query {
    pub expr: &'static str,
    pub legend: &'static str,
}

pub const fn q(expr: &'static str, legend: &'static str) -> Query {
    Query { expr, legend }
}

pub struct Panel {
    pub title: &'static str,
    /// What the panel shows, one sentence; the evidenced causes are appended.
    pub about: &'static str,
    pub viz: Viz,
    pub unit: &'static str,
    pub queries: Vec<Query>,
    /// Column links: (field, link title, URL with `${__data.fields.<name>}` placeholders).
    pub links: Vec<(&'static str, &'static str, String)>,
    /// Tables: units of single columns (`Value #B`) that differ from the panel's.
    pub column_units: Vec<(&'static str, &'static str)>,
}

pub fn panel(
    title: &'static str,
    about: &'static str,
    viz: Viz,
    unit: &'static str,
    queries: Vec<Query>,
) -> Panel {
    Panel {
        title,
        about,
        viz,
        unit,
        queries,
        links: Vec::new(),
        column_units: Vec::new(),
    }
}

impl Panel {
    pub fn link(mut self, field: &'static str, title: &'static str, url: String) -> Self {
        self.links.push((field, title, url));
        self
    }

    pub fn column_unit(mut self, column: &'static str, unit: &'static str) -> Self {
        self.column_units.push((column, unit));
        self
    }
}

pub fn overview_panels(runbook: &str, detail: &str) -> Vec<Panel> {
    vec![
        panel(
            "Firing causes",
            "Cause alerts firing now, one row per load balancer and cause; the cause links to its runbook, the load balancer to its detail dashboard.",
            Viz::Table,
            "none",
            vec![q(r#"ALERTS{alertstate="firing", cause!=""}"#, "")],
        )
        .link("cause", "Runbook", runbook.to_string())
        .link("lb", "Load balancer detail", detail.to_string()),
        panel(
            "Load balancers",
            "Request rate and the share of requests answered with a 5xx, by who generated it.",
            Viz::Table,
            "reqps",
            vec![
                q(r#"sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#, "requests/s"),
                q(
                    r#"sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_responses_total{origin="lb", code=~"5.."}[$__rate_interval])) / sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#,
                    "lb 5xx ratio",
                ),
                q(
                    r#"sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_responses_total{origin="backend", code=~"5.."}[$__rate_interval])) / sum by (provider, region, lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#,
                    "backend 5xx ratio",
                ),
            ],
        )
        .column_unit("Value #B", "percentunit")
        .column_unit("Value #C", "percentunit")
        .link("lb", "Load balancer detail", detail.to_string()),
        panel(
            "Error budget burn rate (last hour)",
            "How many times faster than its SLO allows each load balancer spends its error budget over the last hour (all 5xx, its own and passed through). The page (LBErrorBudgetBurn) needs 14.4 here and over the last five minutes; 1 spends the budget exactly over the SLO window. Needs lbtriage's recording rules.",
            Viz::TimeSeries,
            "short",
            vec![q(
                r#"lbtriage:lb_error_ratio:rate1h / (1 - lbtriage:lb_slo_objective:ratio)"#,
                "{{lb_name}}",
            )],
        ),
        panel(
            "Request rate",
            "Requests each load balancer received.",
            Viz::TimeSeries,
            "reqps",
            vec![q(r#"sum by (lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#, "{{lb_name}}")],
        ),
        panel(
            "Load-balancer-generated 5xx ratio",
            "Share of requests the load balancer itself answered with a 5xx: the target never produced these.",
            Viz::TimeSeries,
            "percentunit",
            vec![q(
                r#"sum by (lb_name, lb) (rate(lbtriage_lb_responses_total{origin="lb", code=~"5.."}[$__rate_interval])) / sum by (lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#,
                "{{lb_name}}",
            )],
        ),
        panel(
            "Backend 5xx ratio",
            "Share of requests answered with a 5xx that a target produced and the load balancer passed through.",
            Viz::TimeSeries,
            "percentunit",
            vec![q(
                r#"sum by (lb_name, lb) (rate(lbtriage_lb_responses_total{origin="backend", code=~"5.."}[$__rate_interval])) / sum by (lb_name, lb) (rate(lbtriage_lb_requests_total[$__rate_interval]))"#,
                "{{lb_name}}",
            )],
        ),
        panel(
            "Sources",
            "Whether each cloud source's last collection worked, and how old its newest data is: evidence is only as fresh as this.",
            Viz::Table,
            "s",
            vec![
                q(r#"lbtriage_source_up"#, "up"),
                q(r#"time() - lbtriage_collection_data_end_timestamp_seconds"#, "data age"),
            ],
        )
        .column_unit("Value #A", "bool_yes_no"),
    ]
}

pub fn detail_panels(runbook: &str) -> Vec<Panel> {
    vec![
        panel(
            "Firing causes",
            "Cause alerts firing now for this load balancer; the cause links to its runbook.",
            Viz::Table,
            "none",
            vec![q(r#"ALERTS{alertstate="firing", cause!="", lb="$lb"}"#, "")],
        )
        .link("cause", "Runbook", runbook.to_string()),
        panel(
            "Responses by origin and code",
            "Requests, and responses by who generated them (lb: the load balancer itself; backend: passed through from a target) and code.",
            Viz::TimeSeries,
            "reqps",
            vec![
                q(r#"sum(rate(lbtriage_lb_requests_total{lb="$lb"}[$__rate_interval]))"#, "requests"),
                q(
                    r#"sum by (origin, code) (rate(lbtriage_lb_responses_total{lb="$lb"}[$__rate_interval]))"#,
                    "{{origin}} {{code}}",
                ),
            ],
        ),
        panel(
            "Connection and TLS errors",
            "Connections the load balancer could not open to targets, failed TLS handshakes on either side, source-port exhaustion and resets.",
            Viz::TimeSeries,
            "cps",
            vec![
                q(r#"sum(rate(lbtriage_lb_target_connection_errors_total{lb="$lb"}[$__rate_interval]))"#, "target connection errors"),
                q(r#"sum(rate(lbtriage_lb_target_tls_errors_total{lb="$lb"}[$__rate_interval]))"#, "target TLS errors"),
                q(r#"sum(rate(lbtriage_lb_client_tls_errors_total{lb="$lb"}[$__rate_interval]))"#, "client TLS errors"),
                q(r#"sum(rate(lbtriage_lb_port_allocation_errors_total{lb="$lb"}[$__rate_interval]))"#, "port allocation errors"),
                q(r#"sum by (origin) (rate(lbtriage_lb_resets_total{lb="$lb"}[$__rate_interval]))"#, "resets by {{origin}}"),
            ],
        ),
        panel(
            "Rejected and dropped connections",
            "Client connections refused at capacity, requests spilled from a full surge queue, and packets dropped at the bandwidth cap.",
            Viz::TimeSeries,
            "cps",
            vec![
                q(r#"sum(rate(lbtriage_lb_rejected_connections_total{lb="$lb"}[$__rate_interval]))"#, "rejected connections"),
                q(r#"sum(rate(lbtriage_lb_spillover_total{lb="$lb"}[$__rate_interval]))"#, "spillover"),
                q(r#"sum by (direction) (rate(lbtriage_lb_dropped_packets_total{lb="$lb"}[$__rate_interval]))"#, "dropped packets {{direction}}"),
            ],
        ),
        panel(
            "Capacity utilisation",
            "Requests per second and connections as a share of the load balancer's limits, where the provider reports them (Alibaba SLB).",
            Viz::TimeSeries,
            "percentunit",
            vec![
                q(r#"max(lbtriage_lb_qps_utilization_ratio{lb="$lb"})"#, "QPS"),
                q(r#"max by (limit) (lbtriage_lb_connection_utilization_ratio{lb="$lb"})"#, "{{limit}}"),
            ],
        ),
        panel(
            "Dropped traffic",
            "Bytes the load balancer dropped at its bandwidth cap, by direction.",
            Viz::TimeSeries,
            "Bps",
            vec![q(
                r#"sum by (direction) (rate(lbtriage_lb_dropped_traffic_bytes_total{lb="$lb"}[$__rate_interval]))"#,
                "{{direction}}",
            )],
        ),
        panel(
            "Surge queue",
            "Requests waiting for a free target connection (Classic load balancers).",
            Viz::TimeSeries,
            "short",
            vec![q(r#"max(lbtriage_lb_surge_queue_length{lb="$lb"})"#, "queued requests")],
        ),
        panel(
            "Healthy and unhealthy targets",
            "Targets the load balancer's health checks pass and fail, and targets registered (from discovery), per target group. Registered at 0 is an empty group; healthy at 0 with unhealthy targets is an ALB failing open.",
            Viz::TimeSeries,
            "short",
            vec![
                q(r#"sum by (target_group) (lbtriage_lb_healthy_targets{lb="$lb"})"#, "healthy {{target_group}}"),
                q(r#"sum by (target_group) (lbtriage_lb_unhealthy_targets{lb="$lb"})"#, "unhealthy {{target_group}}"),
                q(r#"sum by (target_group) (lbtriage_lb_registered_targets{lb="$lb"})"#, "registered {{target_group}}"),
            ],
        ),
        panel(
            "Target health and reasons",
            "Each registered target with the state and reason code the load balancer gives for it.",
            Viz::Table,
            "none",
            vec![q(r#"lbtriage_lb_target_health_info{lb="$lb"}"#, "")],
        ),
        panel(
            "Target response time against the load balancer's timeouts",
            "How long targets take to answer, against the idle timeout and the response timeout the load balancer enforces.",
            Viz::TimeSeries,
            "s",
            vec![
                q(r#"max(lbtriage_lb_target_response_time_seconds{lb="$lb"})"#, "target response time"),
                q(r#"max(lbtriage_lb_target_response_time_max_seconds{lb="$lb"})"#, "slowest response"),
                q(r#"max(lbtriage_lb_idle_timeout_seconds{lb="$lb"})"#, "idle timeout"),
                q(r#"max(lbtriage_probe_lb_response_timeout_seconds{lb="$lb"})"#, "response timeout"),
            ],
        ),
        panel(
            "Probes through the load balancer and against each backend",
            "The latest probe result per address, with the failure reason: through the load balancer (path=lb) and directly to each backend (path=backend).",
            Viz::Table,
            "bool_yes_no",
            vec![
                q(r#"lbtriage_probe_http_success{lb="$lb"}"#, "HTTP"),
                q(r#"lbtriage_probe_tcp_success{lb="$lb"}"#, "TCP"),
            ],
        ),
        panel(
            "Probe request phases",
            "Where the probe's time goes, per address, against the load balancer's response timeout.",
            Viz::TimeSeries,
            "s",
            vec![
                q(
                    r#"max by (path, target, phase) (lbtriage_probe_http_phase_seconds{lb="$lb", request="app"})"#,
                    "{{path}} {{target}} {{phase}}",
                ),
                q(r#"max(lbtriage_probe_lb_response_timeout_seconds{lb="$lb"})"#, "response timeout"),
            ],
        ),
        panel(
            "Backend keep-alive against the load balancer idle timeout",
            "How long each backend keeps an idle connection open; below the load balancer's idle timeout, the load balancer reuses connections the backend already closed.",
            Viz::TimeSeries,
            "s",
            vec![
                q(r#"max by (target) (lbtriage_probe_keepalive_idle_seconds{lb="$lb"})"#, "{{target}} keep-alive"),
                q(r#"max(lbtriage_probe_lb_idle_timeout_seconds{lb="$lb"})"#, "load balancer idle timeout"),
            ],
        ),
        panel(
            "Oversized requests, QPS limit and addresses",
            "Per address: whether a request with a large header or body got through, whether the load balancer marked a response as QPS-limited, and how many addresses its name resolves to.",
            Viz::Table,
            "short",
            vec![
                q(r#"lbtriage_probe_large_header_success{lb="$lb"}"#, "large header"),
                q(r#"lbtriage_probe_large_body_success{lb="$lb"}"#, "large body"),
                q(r#"lbtriage_probe_qps_limited{lb="$lb"}"#, "QPS limited"),
                q(r#"lbtriage_probe_dns_addresses{lb="$lb"}"#, "addresses"),
            ],
        ),
        panel(
            "Certificate expiry",
            "Time left before the first certificate of each presented chain expires, and whether the chain and name verify.",
            Viz::Table,
            "s",
            vec![
                q(r#"min by (path, target) (lbtriage_probe_tls_earliest_expiry_timestamp_seconds{lb="$lb"}) - time()"#, "expires in"),
                q(r#"min by (path, target) (lbtriage_probe_tls_chain_valid{lb="$lb"})"#, "chain valid"),
                q(r#"min by (path, target) (lbtriage_probe_tls_hostname_match{lb="$lb"})"#, "name matches"),
            ],
        )
        .column_unit("Value #B", "bool_yes_no")
        .column_unit("Value #C", "bool_yes_no"),
        panel(
            "Load balancer",
            "What the cloud API says about this load balancer: type, DNS name, scheme and tags.",
            Viz::Table,
            "none",
            vec![q(r#"lbtriage_lb_info{lb="$lb"}"#, "")],
        ),
    ]
}

pub fn probes_panels(detail: &str) -> Vec<Panel> {
    vec![
        panel(
            "Latest results",
            "The latest result of every probe per address and request, with the failure reason.",
            Viz::Table,
            "bool_yes_no",
            vec![
                q(r#"lbtriage_probe_http_success{probe=~"$probe"}"#, "HTTP"),
                q(r#"lbtriage_probe_tcp_success{probe=~"$probe"}"#, "TCP"),
            ],
        )
        .link("lb", "Load balancer detail", detail.to_string()),
        panel(
            "Phases per target",
            "Duration of each phase of the application request per address.",
            Viz::TimeSeries,
            "s",
            vec![q(
                r#"max by (probe, path, target, phase) (lbtriage_probe_http_phase_seconds{probe=~"$probe", request="app"})"#,
                "{{probe}} {{path}} {{target}} {{phase}}",
            )],
        ),
        panel(
            "Failures by reason and vantage",
            "Failing probe requests, by why they failed and where the probe ran.",
            Viz::TimeSeries,
            "short",
            vec![q(
                r#"count by (reason, vantage, path) (lbtriage_probe_http_success{probe=~"$probe"} == 0)"#,
                "{{reason}} via {{path}} from {{vantage}}",
            )],
        ),
        panel(
            "TLS certificate expiry",
            "Time left before the first certificate of each presented chain expires.",
            Viz::TimeSeries,
            "s",
            vec![q(
                r#"min by (probe, path, target) (lbtriage_probe_tls_earliest_expiry_timestamp_seconds{probe=~"$probe"}) - time()"#,
                "{{probe}} {{path}} {{target}}",
            )],
        ),
        panel(
            "Keep-alive against the load balancer idle timeout",
            "How long each backend keeps an idle connection open, against the idle timeout it is compared with.",
            Viz::TimeSeries,
            "s",
            vec![
                q(r#"max by (probe, target) (lbtriage_probe_keepalive_idle_seconds{probe=~"$probe"})"#, "{{probe}} {{target}}"),
                q(r#"max by (probe) (lbtriage_probe_lb_idle_timeout_seconds{probe=~"$probe"})"#, "{{probe}} idle timeout"),
            ],
        ),
    ]
}

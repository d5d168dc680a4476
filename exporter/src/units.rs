//! How alert descriptions print a value: in the unit a person thinks in, with at most three
//! significant digits and no SI prefixes. Prometheus' `humanize` prints a per-second rate of 0.2555
//! as "255.5m" (read: 255 million); these print "15.3 per minute". The catalog's descriptions name
//! them as `${value_rate}`, `${value_share}`, `${value_duration}`, `${value_bytes_rate}`,
//! `${value_count}` and `${lb}`; the rule renderer expands them into Go templates. Arithmetic goes through `query` (a
//! scalar expression), since Prometheus' templates have none of their own.

/// `x` (a template expression holding a float) with three significant digits: 123, 12.3, 1.23.
fn three_digits(x: &str) -> String {
    format!(
        "{{{{ if ge {x} 100.0 }}}}{{{{ printf \"%.0f\" {x} }}}}{{{{ else if ge {x} 10.0 }}}}{{{{ printf \"%.1f\" {x} }}}}\
         {{{{ else }}}}{{{{ printf \"%.2f\" {x} }}}}{{{{ end }}}}"
    )
}

/// `$value` times `factor` (a PromQL expression suffix such as `* 60`), printed by `print` with the
/// result in `.`.
fn scaled(factor: &str, print: &str) -> String {
    format!("{{{{ with printf \"%f {factor}\" $value | query }}}}{{{{ with . | first | value }}}}{print}{{{{ end }}}}{{{{ end }}}}")
}

/// A per-second rate: per second from one a second, per minute below.
pub fn rate() -> String {
    format!(
        "{{{{ if ge $value 1.0 }}}}{} per second{{{{ else }}}}{}{{{{ end }}}}",
        three_digits("$value"),
        scaled("* 60", &format!("{} per minute", three_digits(".")))
    )
}

/// A ratio as a percentage.
pub fn share() -> String {
    scaled("* 100", &format!("{}%", three_digits(".")))
}

/// Seconds: as seconds below a minute, as "1h 2m 3s" from there.
pub fn duration() -> String {
    format!(
        "{{{{ if lt $value 60.0 }}}}{} s{{{{ else }}}}{{{{ $value | humanizeDuration }}}}{{{{ end }}}}",
        three_digits("$value")
    )
}

/// Bytes per second, in binary units.
pub fn bytes_rate() -> String {
    format!(
        "{{{{ if ge $value 1048576.0 }}}}{} MiB/s{{{{ else if ge $value 1024.0 }}}}{} KiB/s{{{{ else }}}}{} B/s{{{{ end }}}}",
        scaled("/ 1048576", &three_digits(".")),
        scaled("/ 1024", &three_digits(".")),
        three_digits("$value")
    )
}

/// A count: a whole number.
pub fn count() -> String {
    "{{ printf \"%.0f\" $value }}".to_string()
}

/// The load balancer by its name, with its ID where the name is another.
pub fn lb() -> String {
    "{{ if and $labels.lb_name (ne $labels.lb_name $labels.lb) }}{{ $labels.lb_name }} ({{ $labels.lb }})\
     {{ else }}{{ $labels.lb }}{{ end }}"
        .to_string()
}

/// The helpers by the names descriptions use.
pub fn params() -> [(&'static str, String); 6] {
    [
        ("value_count", count()),
        ("value_rate", rate()),
        ("value_share", share()),
        ("value_duration", duration()),
        ("value_bytes_rate", bytes_rate()),
        ("lb", lb()),
    ]
}

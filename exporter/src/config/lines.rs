//! Where a key is in the YAML text, so an error can name its line.

/// The line (1-based) of `key` (`aws[1].regions[0]`, `rules.slo.overrides[0].objective`) in the
/// YAML text: the line of that very entry, whatever list index it sits under. A key the text does
/// not hold (a missing required field) falls back to its nearest ancestor that it does.
pub(super) fn find_line(text: &str, key: &str) -> Option<usize> {
    let lines = key_lines(text);
    let mut key = key;
    loop {
        if let Some(line) = lines.get(key) {
            return Some(*line);
        }
        let cut = key.rfind(['.', '['])?;
        key = &key[..cut];
    }
}

/// Every key path of the YAML text with the line it starts on, read from the parser's events so
/// that list indexes count (`aws[1].name` is the second entry's `name`, not the first one's).
fn key_lines(text: &str) -> std::collections::HashMap<String, usize> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    enum Frame {
        /// The path of the mapping, and the key whose value comes next.
        Map(String, Option<String>),
        /// The path of the sequence, and the index of its next element.
        Seq(String, usize),
    }
    #[derive(Default)]
    struct Walk {
        stack: Vec<Frame>,
        lines: std::collections::HashMap<String, usize>,
    }
    impl Walk {
        /// Where a new node goes: its path, or None when it is a mapping's key.
        fn place(&mut self, scalar: Option<&str>, line: usize) -> Option<String> {
            match self.stack.last_mut() {
                None => Some(String::new()),
                Some(Frame::Map(path, key @ None)) => {
                    if let Some(name) = scalar {
                        let full = if path.is_empty() {
                            name.to_string()
                        } else {
                            format!("{path}.{name}")
                        };
                        self.lines.entry(full).or_insert(line);
                        *key = Some(name.to_string());
                    }
                    None
                }
                Some(Frame::Map(path, key @ Some(_))) => {
                    let name = key.take().unwrap_or_default();
                    Some(if path.is_empty() {
                        name
                    } else {
                        format!("{path}.{name}")
                    })
                }
                Some(Frame::Seq(path, next)) => {
                    let full = format!("{path}[{next}]");
                    *next += 1;
                    self.lines.entry(full.clone()).or_insert(line);
                    Some(full)
                }
            }
        }
    }
    impl MarkedEventReceiver for Walk {
        fn on_event(&mut self, event: Event, mark: Marker) {
            let line = mark.line();
            match event {
                Event::Scalar(value, ..) => {
                    self.place(Some(&value), line);
                }
                Event::Alias(_) => {
                    self.place(None, line);
                }
                Event::MappingStart(..) => {
                    if let Some(path) = self.place(None, line) {
                        self.stack.push(Frame::Map(path, None));
                    }
                }
                Event::SequenceStart(..) => {
                    if let Some(path) = self.place(None, line) {
                        self.stack.push(Frame::Seq(path, 0));
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    self.stack.pop();
                }
                _ => {}
            }
        }
    }
    let mut walk = Walk::default();
    // A text that does not parse has no lines to point at; the parse error says where instead.
    let _ = Parser::new_from_str(text).load(&mut walk, false);
    walk.lines
}

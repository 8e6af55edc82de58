//! `herald:allow` comments: `<!-- herald:allow rule-id other-id -->` turns those rules off
//! for the line it is on, and, when the comment is alone on its line, for the next line too.
//! In front matter, a comment (`# herald:allow subject-long`) does the same.

use std::collections::HashMap;

const DIRECTIVE: &str = "herald:allow";

/// The allow comments of one file, by 1-based line.
#[derive(Debug, Default)]
pub(super) struct Directives {
    by_line: HashMap<usize, Vec<String>>,
}

impl Directives {
    pub fn read(source: &str) -> Self {
        let mut by_line: HashMap<usize, Vec<String>> = HashMap::new();
        for (i, line) in source.lines().enumerate() {
            let Some(at) = line.find(DIRECTIVE) else {
                continue;
            };
            let after = &line[at + DIRECTIVE.len()..];
            let ids_end = after.find("-->").unwrap_or(after.len());
            let ids: Vec<String> = after[..ids_end]
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .collect();
            let number = i + 1;
            let before = line[..at].trim();
            let rest = after.get(ids_end + 3..).unwrap_or("").trim();
            let alone = matches!(before, "<!--" | "#") && rest.is_empty();
            by_line
                .entry(number)
                .or_default()
                .extend(ids.iter().cloned());
            if alone {
                by_line.entry(number + 1).or_default().extend(ids);
            }
        }
        Self { by_line }
    }

    /// Whether `rule` is allowed on `line`.
    pub fn allows(&self, line: usize, rule: &str) -> bool {
        self.by_line
            .get(&line)
            .is_some_and(|ids| ids.iter().any(|id| id == rule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_covers_its_line_and_when_alone_the_next() {
        let source = "a\n<!-- herald:allow link-text, image-alt -->\n[here](x)\nb <!-- herald:allow draft --> c\nd\n";
        let d = Directives::read(source);
        assert!(d.allows(2, "link-text") && d.allows(3, "link-text") && d.allows(3, "image-alt"));
        assert!(!d.allows(4, "link-text"));
        assert!(d.allows(4, "draft") && !d.allows(5, "draft"));
        let yaml = Directives::read("---\n# herald:allow subject-long\nsubject: x\n---\n");
        assert!(yaml.allows(3, "subject-long"));
    }
}

//! Dockerfile text → logical instructions: comments and blank lines
//! dropped, `\` continuations joined (comment lines inside a continuation
//! skipped, as Docker does), each instruction with the line it starts on.

use super::DockerfileError;

/// One instruction: keyword (upper-cased), its arguments, its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub args: String,
}

/// Longest Dockerfile read.
pub const MAX_DOCKERFILE: usize = 1 << 20;

pub(crate) fn instructions(text: &str) -> Result<Vec<Instruction>, DockerfileError> {
    if text.len() > MAX_DOCKERFILE {
        return Err(DockerfileError::at(
            0,
            format!("the Dockerfile is larger than {} KiB", MAX_DOCKERFILE >> 10),
        ));
    }
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        let (start, mut text) = current.take().unwrap_or((number, String::new()));
        if !text.is_empty() && !body.is_empty() {
            text.push(' ');
        }
        text.push_str(body.trim());
        if continues {
            current = Some((start, text));
            continue;
        }
        if text.is_empty() {
            continue;
        }
        out.push(split(start, &text)?);
    }
    if let Some((start, text)) = current {
        out.push(split(start, &text)?);
    }
    Ok(out)
}

fn split(line: usize, text: &str) -> Result<Instruction, DockerfileError> {
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    if !keyword.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(DockerfileError::at(
            line,
            format!(
                "'{}' is not an instruction",
                keyword.chars().take(40).collect::<String>()
            ),
        ));
    }
    Ok(Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_continuations_and_keeps_first_lines() {
        let text = "# syntax\nFROM base\n\nRUN apt-get update && \\\n    # a comment inside\n    apt-get install -y jq\nenv A=1\n";
        let got = instructions(text).unwrap();
        assert_eq!(
            got,
            [
                Instruction {
                    line: 2,
                    keyword: "FROM".into(),
                    args: "base".into()
                },
                Instruction {
                    line: 4,
                    keyword: "RUN".into(),
                    args: "apt-get update && apt-get install -y jq".into()
                },
                Instruction {
                    line: 7,
                    keyword: "ENV".into(),
                    args: "A=1".into()
                },
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_an_instruction() {
        let err = instructions("FROM base\n{\"x\": 1}\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Dockerfile line 2:"), "{err}");
    }
}

//! The transcript format, after etcd raft's datadriven tests: blocks of a command line,
//! a `----` line and the expected output, separated by a blank line; `#` lines and blank
//! lines between blocks are comments, kept as they are when a transcript is rewritten.
//!
//! ```text
//! # Node 1 campaigns and wins.
//! campaign 1
//! ----
//! node 1 campaigned after 22 ticks
//! node 1: follower t0 -> pre-candidate t0
//! ```

/// One command and what it should print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Comment and blank lines before the command.
    pub leading: Vec<String>,
    /// The command line.
    pub command: String,
    /// Its line number in the file (1-based).
    pub line: usize,
    /// The expected output lines.
    pub expected: Vec<String>,
}

/// A parsed transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The blocks, in order.
    pub blocks: Vec<Block>,
    /// Comment and blank lines after the last block.
    pub trailing: Vec<String>,
}

/// Parses a transcript, or says which line is wrong.
pub fn parse(text: &str) -> Result<Script, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut leading = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        if line.trim().is_empty() || line.starts_with('#') {
            leading.push(line.to_string());
            at += 1;
            continue;
        }
        let command_line = at + 1;
        if lines.get(at + 1) != Some(&"----") {
            return Err(format!("line {}: expected `----` after the command {line:?}", at + 2));
        }
        at += 2;
        let mut expected = Vec::new();
        while at < lines.len() && !lines[at].is_empty() {
            expected.push(lines[at].to_string());
            at += 1;
        }
        blocks.push(Block {
            leading: std::mem::take(&mut leading),
            command: line.to_string(),
            line: command_line,
            expected,
        });
    }
    Ok(Script { blocks, trailing: leading })
}

/// The transcript text of `script` with `outputs` as the blocks' outputs.
pub fn render(script: &Script, outputs: &[Vec<String>]) -> String {
    let mut text = String::new();
    for (block, output) in script.blocks.iter().zip(outputs) {
        for line in &block.leading {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&block.command);
        text.push_str("\n----\n");
        for line in output {
            text.push_str(line);
            text.push('\n');
        }
    }
    for line in &script.trailing {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_parse_and_render_back_unchanged() {
        let text = "# a comment\n\ncluster nodes=3\n----\n3 nodes\n\nstatus\n----\nnode 1: follower\nnode 2: follower\n\n# the end\n";
        let script = parse(text).unwrap();
        assert_eq!(script.blocks.len(), 2);
        assert_eq!(script.blocks[1].command, "status");
        assert_eq!(script.blocks[1].line, 7);
        let outputs: Vec<Vec<String>> = script.blocks.iter().map(|block| block.expected.clone()).collect();
        assert_eq!(render(&script, &outputs), text);
    }

    #[test]
    fn a_command_without_its_separator_is_an_error() {
        assert!(parse("status\nnode 1\n").unwrap_err().contains("line 2"));
    }
}

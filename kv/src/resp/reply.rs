//! RESP2 replies, written into a buffer in the order they are given.

/// Writes replies into a buffer.
#[derive(Debug, Default)]
pub struct Reply {
    /// The bytes to send.
    pub bytes: Vec<u8>,
}

impl Reply {
    /// `+text`.
    pub fn simple(&mut self, text: &str) {
        self.bytes.push(b'+');
        self.bytes.extend_from_slice(text.as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// `-text`: the first word is the error code (`ERR`, `MOVED`, `TRYAGAIN`, ...).
    /// Line breaks in `text` would end the reply early, so they become spaces.
    pub fn error(&mut self, text: &str) {
        self.bytes.push(b'-');
        self.bytes.extend(text.bytes().map(|byte| if byte == b'\r' || byte == b'\n' { b' ' } else { byte }));
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// `:n`.
    pub fn integer(&mut self, number: i64) {
        self.bytes.push(b':');
        self.bytes.extend_from_slice(number.to_string().as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// `$len\r\nbytes\r\n`, or the null bulk string `$-1` for `None`.
    pub fn bulk(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            Some(bytes) => {
                self.bytes.push(b'$');
                self.bytes.extend_from_slice(bytes.len().to_string().as_bytes());
                self.bytes.extend_from_slice(b"\r\n");
                self.bytes.extend_from_slice(bytes);
                self.bytes.extend_from_slice(b"\r\n");
            }
            None => self.bytes.extend_from_slice(b"$-1\r\n"),
        }
    }

    /// `*-1`: the null array.
    pub fn null_array(&mut self) {
        self.bytes.extend_from_slice(b"*-1\r\n");
    }

    /// `*n`: the header of an array whose `n` elements follow.
    pub fn array(&mut self, length: usize) {
        self.bytes.push(b'*');
        self.bytes.extend_from_slice(length.to_string().as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
    }
}

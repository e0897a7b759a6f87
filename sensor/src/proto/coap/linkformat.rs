//! CoRE Link Format reader (RFC 6690 §2), for `/.well-known/core` responses
//! (RFC 6690 §4, RFC 7252 §7.2).
//!
//! ```text
//! Link            = link-value-list
//! link-value-list = [ link-value *[ "," link-value ]]
//! link-value      = "<" URI-Reference ">" *( ";" link-param )
//! ```
//!
//! Lenient: whitespace between the syntax elements is skipped (RFC 6690 shows
//! its examples wrapped over several lines), parameter names are compared
//! case-insensitively, a link that does not follow the grammar is skipped up to
//! the next top-level ',' and counted. Bounded: at most `max_links` links and
//! `max_value_len` bytes per kept string; hitting either sets `truncated`.

use crate::proto::text::push_capped;

/// Default cap on links kept from one payload.
pub const DEFAULT_MAX_LINKS: usize = 64;
/// Default cap, in bytes, on a target or attribute value.
pub const DEFAULT_MAX_LINK_VALUE_LEN: usize = 128;
/// Cap on Content-Format numbers kept from one `ct` attribute.
pub const MAX_CONTENT_FORMATS_PER_LINK: usize = 8;

/// Bounds for [`parse_link_format`] (config section `[protocols.coap.link_format]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkFormatLimits {
    pub max_links: usize,
    /// Bytes kept of a target or attribute value.
    #[serde(
        rename = "max_value_bytes",
        deserialize_with = "crate::units::de_bytes"
    )]
    pub max_value_len: usize,
}

impl Default for LinkFormatLimits {
    fn default() -> Self {
        LinkFormatLimits {
            max_links: DEFAULT_MAX_LINKS,
            max_value_len: DEFAULT_MAX_LINK_VALUE_LEN,
        }
    }
}

/// One link with the attributes a sensor profiles. Attributes other than these
/// (RFC 6690 §2 `link-extension`, hreflang, media, type, ...) are skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkResource {
    /// The URI-Reference between '<' and '>'.
    pub target: String,
    /// Resource type `rt` (RFC 6690 §3.1), raw (space-separated list).
    pub rt: Option<String>,
    /// Interface description `if` (RFC 6690 §3.2), raw.
    pub interface: Option<String>,
    /// Content-Format numbers of `ct` (RFC 7252 §7.2.1).
    pub content_formats: Vec<u16>,
    /// `obs` flag: the resource is observable (RFC 7641 §6).
    pub observable: bool,
    pub title: Option<String>,
    pub anchor: Option<String>,
    pub rel: Option<String>,
    /// Maximum size estimate `sz` (RFC 6690 §3.3).
    pub size: Option<u64>,
}

/// What [`parse_link_format`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFormat {
    pub links: Vec<LinkResource>,
    /// A cap was hit: links were dropped or values cut.
    pub truncated: bool,
    /// Links that did not follow the grammar and were skipped.
    pub malformed: u32,
}

/// Byte cursor over the payload.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.bump();
        }
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.bump();
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// Skips to the next ',' that is outside '<...>' and quotes (or the end).
    fn skip_to_next_link(&mut self) {
        let mut in_quotes = false;
        let mut in_angle = false;
        while let Some(b) = self.peek() {
            match b {
                b'\\' if in_quotes => self.bump(),
                b'"' if !in_angle => in_quotes = !in_quotes,
                b'<' if !in_quotes => in_angle = true,
                b'>' if !in_quotes => in_angle = false,
                b',' if !in_quotes && !in_angle => return,
                _ => {}
            }
            self.bump();
        }
    }
}

/// `token` characters of RFC 2616 §2.2, which `parmname` uses.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes of a `ptoken` value: anything up to ';', ',' or whitespace.
fn is_ptoken_char(b: u8) -> bool {
    !matches!(b, b';' | b',' | b' ' | b'\t' | b'\r' | b'\n' | b'"')
}

/// Longest parameter name [`Parser::param`] recognises ("anchor").
const PARAM_NAME_BUF: usize = 6;

/// Marker for a link that breaks the grammar.
struct Malformed;

struct Parser<'a> {
    cur: Cursor<'a>,
    limits: LinkFormatLimits,
    truncated: bool,
}

impl<'a> Parser<'a> {
    fn string(&mut self, bytes: &[u8]) -> String {
        let mut s = String::new();
        self.truncated |= push_capped(&mut s, bytes, self.limits.max_value_len);
        s
    }

    /// A quoted-string after its opening quote; unescapes quoted-pairs.
    fn quoted(&mut self) -> Result<String, Malformed> {
        // Fast path: no quoted-pair before the closing quote, so the value is
        // a slice of the payload (cut to the cap as the loop below cuts it).
        let rest = self.cur.s.get(self.cur.pos..).unwrap_or_default();
        if let Some(end) = rest.iter().position(|&b| b == b'"' || b == b'\\')
            && rest[end] == b'"'
        {
            let mut value = &rest[..end];
            self.cur.pos += end + 1;
            if value.len() > self.limits.max_value_len {
                self.truncated = true;
                value = &value[..self.limits.max_value_len];
            }
            return Ok(self.string(value));
        }
        let mut raw = Vec::new();
        loop {
            let b = self.cur.peek().ok_or(Malformed)?;
            self.cur.bump();
            match b {
                b'"' => break,
                b'\\' => {
                    let escaped = self.cur.peek().ok_or(Malformed)?;
                    self.cur.bump();
                    raw.push(escaped);
                }
                _ => raw.push(b),
            }
            if raw.len() > self.limits.max_value_len {
                // Keep scanning for the closing quote but stop collecting.
                self.truncated = true;
                raw.pop();
            }
        }
        Ok(self.string(&raw))
    }

    fn link(&mut self) -> Result<LinkResource, Malformed> {
        if self.cur.peek() != Some(b'<') {
            return Err(Malformed);
        }
        self.cur.bump();
        let target = self.cur.take_while(|b| b != b'>');
        if self.cur.peek() != Some(b'>') {
            return Err(Malformed);
        }
        self.cur.bump();
        let mut link = LinkResource {
            target: self.string(target),
            ..LinkResource::default()
        };
        loop {
            self.cur.skip_ws();
            match self.cur.peek() {
                None | Some(b',') => return Ok(link),
                Some(b';') => {
                    self.cur.bump();
                    self.cur.skip_ws();
                    self.param(&mut link)?;
                }
                Some(_) => return Err(Malformed),
            }
        }
    }

    fn param(&mut self, link: &mut LinkResource) -> Result<(), Malformed> {
        let name = self.cur.take_while(is_token_char);
        if name.is_empty() {
            return Err(Malformed);
        }
        self.cur.skip_ws();
        let value = if self.cur.peek() == Some(b'=') {
            self.cur.bump();
            self.cur.skip_ws();
            if self.cur.peek() == Some(b'"') {
                self.cur.bump();
                Some(self.quoted()?)
            } else {
                let raw = self.cur.take_while(is_ptoken_char);
                Some(self.string(raw))
            }
        } else {
            None
        };
        // Lower-cased on the stack: every name matched below fits.
        let mut lower = [0u8; PARAM_NAME_BUF];
        let name = match lower.get_mut(..name.len()) {
            Some(buf) => {
                buf.copy_from_slice(name);
                buf.make_ascii_lowercase();
                &*buf
            }
            None => &[],
        };
        let slot = match name {
            b"rt" => &mut link.rt,
            b"if" => &mut link.interface,
            b"title" => &mut link.title,
            b"anchor" => &mut link.anchor,
            b"rel" => &mut link.rel,
            b"obs" => {
                link.observable = true;
                return Ok(());
            }
            b"sz" => {
                link.size = value.and_then(|v| v.parse().ok());
                return Ok(());
            }
            b"ct" => {
                for n in value.iter().flat_map(|v| v.split_ascii_whitespace()) {
                    if link.content_formats.len() == MAX_CONTENT_FORMATS_PER_LINK {
                        self.truncated = true;
                        break;
                    }
                    if let Ok(cf) = n.parse() {
                        link.content_formats.push(cf);
                    }
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        if slot.is_none() {
            *slot = value;
        }
        Ok(())
    }
}

/// Reads a link-format payload (RFC 6690 §2) within `limits`.
pub fn parse_link_format(input: &[u8], limits: LinkFormatLimits) -> LinkFormat {
    let mut p = Parser {
        cur: Cursor { s: input, pos: 0 },
        limits,
        truncated: false,
    };
    let mut out = LinkFormat::default();
    loop {
        p.cur.skip_ws();
        if p.cur.peek().is_none() {
            break;
        }
        if out.links.len() >= limits.max_links {
            p.truncated = true;
            break;
        }
        match p.link() {
            Ok(link) => out.links.push(link),
            Err(Malformed) => {
                out.malformed += 1;
                p.cur.skip_to_next_link();
            }
        }
        // Now at ',' or at the end.
        if p.cur.peek() == Some(b',') {
            p.cur.bump();
        }
    }
    out.truncated = p.truncated;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6690 §5 (the `/.well-known/core` response of the first example),
    /// written as it travels: no line breaks.
    const RFC6690_S5: &str = concat!(
        r#"</sensors>;ct=40;title="Sensor Index","#,
        r#"</sensors/temp>;rt="temperature-c";if="sensor","#,
        r#"</sensors/light>;rt="light-lux";if="sensor","#,
        r#"<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby","#,
        r#"</t>;anchor="/sensors/temp";rel="alternate""#
    );

    fn check_rfc6690_s5(lf: &LinkFormat) {
        assert_eq!(lf.malformed, 0);
        assert!(!lf.truncated);
        let targets: Vec<_> = lf.links.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(
            targets,
            [
                "/sensors",
                "/sensors/temp",
                "/sensors/light",
                "http://www.example.com/sensors/t123",
                "/t"
            ]
        );
        assert_eq!(lf.links[0].content_formats, [40]);
        assert_eq!(lf.links[0].title.as_deref(), Some("Sensor Index"));
        assert_eq!(lf.links[1].rt.as_deref(), Some("temperature-c"));
        assert_eq!(lf.links[1].interface.as_deref(), Some("sensor"));
        assert_eq!(lf.links[2].rt.as_deref(), Some("light-lux"));
        assert_eq!(lf.links[3].anchor.as_deref(), Some("/sensors/temp"));
        assert_eq!(lf.links[3].rel.as_deref(), Some("describedby"));
        assert_eq!(lf.links[4].rel.as_deref(), Some("alternate"));
        assert!(lf.links.iter().all(|l| !l.observable));
    }

    #[test]
    fn rfc6690_section5_example() {
        check_rfc6690_s5(&parse_link_format(
            RFC6690_S5.as_bytes(),
            LinkFormatLimits::default(),
        ));
    }

    #[test]
    fn rfc6690_section5_example_as_printed_with_line_breaks() {
        // The RFC prints the payload wrapped; the 4th link even breaks before ';'.
        let printed = "</sensors>;ct=40;title=\"Sensor Index\",\n\
             </sensors/temp>;rt=\"temperature-c\";if=\"sensor\",\n\
             </sensors/light>;rt=\"light-lux\";if=\"sensor\",\n\
             <http://www.example.com/sensors/t123>;anchor=\"/sensors/temp\"\n\
             ;rel=\"describedby\",\n\
             </t>;anchor=\"/sensors/temp\";rel=\"alternate\"";
        check_rfc6690_s5(&parse_link_format(
            printed.as_bytes(),
            LinkFormatLimits::default(),
        ));
    }

    #[test]
    fn obs_sz_ct_list_and_unknown_params() {
        // obs: RFC 7641 §6; ct list: RFC 7252 §7.2.1; sz: RFC 6690 §3.3.
        let lf = parse_link_format(
            br#"</temp>;obs;ct="0 40";sz=262144;foo=bar;EXT="x,y""#,
            LinkFormatLimits::default(),
        );
        assert_eq!(lf.malformed, 0);
        let l = &lf.links[0];
        assert!(l.observable);
        assert_eq!(l.content_formats, [0, 40]);
        assert_eq!(l.size, Some(262144));
    }

    #[test]
    fn param_names_are_case_insensitive() {
        let lf = parse_link_format(
            br#"</a>;RT="x";Anchor="/b";OBS;anchors="no";titles=no"#,
            LinkFormatLimits::default(),
        );
        assert_eq!(lf.malformed, 0);
        let l = &lf.links[0];
        assert_eq!(l.rt.as_deref(), Some("x"));
        assert_eq!(l.anchor.as_deref(), Some("/b"));
        assert!(l.observable);
        assert_eq!(l.title, None);
    }

    #[test]
    fn quoted_pair_and_comma_inside_quotes() {
        let lf = parse_link_format(br#"</a>;title="x\"y, z",</b>"#, LinkFormatLimits::default());
        assert_eq!(lf.links.len(), 2);
        assert_eq!(lf.links[0].title.as_deref(), Some("x\"y, z"));
        assert_eq!(lf.links[1].target, "/b");
    }

    #[test]
    fn malformed_links_are_skipped_and_counted() {
        let cases: [(&[u8], usize, u32); 6] = [
            (b"/no-angle,</ok>", 1, 1),
            (b"</unterminated", 0, 1),
            (b"</a>junk,</ok>", 1, 1),
            (br#"</a>;title="open"#, 0, 1),
            (b"</a>;=x,</ok>", 1, 1),
            (b"", 0, 0),
        ];
        for (input, links, malformed) in cases {
            let lf = parse_link_format(input, LinkFormatLimits::default());
            assert_eq!(
                (lf.links.len(), lf.malformed),
                (links, malformed),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn limits_truncate() {
        let limits = LinkFormatLimits {
            max_links: 2,
            max_value_len: 4,
        };
        let lf = parse_link_format(b"</a>,</b>,</c>", limits);
        assert_eq!(lf.links.len(), 2);
        assert!(lf.truncated);
        let lf = parse_link_format(br#"</abcdefgh>;rt="123456""#, limits);
        assert_eq!(lf.links[0].target, "/abc");
        assert_eq!(lf.links[0].rt.as_deref(), Some("1234"));
        assert!(lf.truncated);
        let lf = parse_link_format(
            br#"</a>;ct="1 2 3 4 5 6 7 8 9""#,
            LinkFormatLimits::default(),
        );
        assert_eq!(
            lf.links[0].content_formats.len(),
            MAX_CONTENT_FORMATS_PER_LINK
        );
        assert!(lf.truncated);
    }

    #[test]
    fn no_panic_on_any_prefix() {
        let input = RFC6690_S5.as_bytes();
        for end in 0..=input.len() {
            let lf = parse_link_format(&input[..end], LinkFormatLimits::default());
            assert!(lf.links.len() <= 5);
        }
        for b in [0u8, b'<', b'>', b'"', b'\\', b';', b',', 0xFF] {
            let mut v = input.to_vec();
            for i in (0..v.len()).step_by(7) {
                v[i] = b;
            }
            parse_link_format(&v, LinkFormatLimits::default());
        }
    }
}

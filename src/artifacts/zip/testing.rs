//! A small zip central-directory reader for the writer's tests (Zip64 aware).

/// One member as the central directory describes it.
#[derive(Debug)]
pub(super) struct Member {
    pub name: String,
    pub method: u16,
    pub mode: u32,
    pub made_by: u16,
    pub size: u64,
    pub compressed: u64,
}

/// What the end records say.
#[derive(Debug)]
pub(super) struct Directory {
    pub members: Vec<Member>,
    pub zip64_end: bool,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

/// Reads the central directory of a zip without a comment, Zip64 aware.
pub(super) fn read_directory(zip: &[u8]) -> Directory {
    let end = zip.len() - 22;
    assert_eq!(u32_at(zip, end), 0x0605_4b50, "end record");
    let mut count = u64::from(u16_at(zip, end + 10));
    let mut cd_offset = u64::from(u32_at(zip, end + 16));
    let zip64_end = end >= 20 && u32_at(zip, end - 20) == 0x0706_4b50;
    if zip64_end {
        let rec = u64_at(zip, end - 20 + 8) as usize;
        assert_eq!(u32_at(zip, rec), 0x0606_4b50, "zip64 end record");
        count = u64_at(zip, rec + 32);
        cd_offset = u64_at(zip, rec + 48);
    }
    let mut at = cd_offset as usize;
    let mut members = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(zip, at), 0x0201_4b50, "central header");
        let name_len = u16_at(zip, at + 28) as usize;
        let extra_len = u16_at(zip, at + 30) as usize;
        let comment_len = u16_at(zip, at + 32) as usize;
        let mut compressed = u64::from(u32_at(zip, at + 20));
        let mut size = u64::from(u32_at(zip, at + 24));
        let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).expect("utf8");
        let mut x = at + 46 + name_len;
        let extra_end = x + extra_len;
        while x < extra_end {
            let (id, len) = (u16_at(zip, x), u16_at(zip, x + 2) as usize);
            if id == 1 {
                let mut f = x + 4;
                if size == 0xFFFF_FFFF {
                    size = u64_at(zip, f);
                    f += 8;
                }
                if compressed == 0xFFFF_FFFF {
                    compressed = u64_at(zip, f);
                }
            }
            x += 4 + len;
        }
        members.push(Member {
            name,
            method: u16_at(zip, at + 10),
            mode: u32_at(zip, at + 38) >> 16,
            made_by: u16_at(zip, at + 4),
            size,
            compressed,
        });
        at = extra_end + comment_len;
    }
    Directory { members, zip64_end }
}

//! Several arrays in one `.npz` archive, as `numpy.savez` writes it: a ZIP archive holding one
//! `NAME.npy` member per array (a repeated name as `NAME_1.npy`, …), stored without compression (method 0, the CRC-32 of each
//! member in its headers), readable by `numpy.load`. ZIP64 is not written: an archive whose
//! members or offsets reach 4 GiB is refused ([`NpyError::NpzTooLarge`]), never truncated.

use std::path::Path;

use crate::{Array, NpyError, io_error, write};

/// The CRC-32 (IEEE 802.3, reflected, polynomial `0xEDB88320`) of `data`, as ZIP stores it.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *t = c;
    }
    !data.iter().fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

/// The bytes of an `.npz` archive holding `arrays`, each as the member `NAME.npy`.
pub fn write_npz(arrays: &[(&str, &Array)]) -> Result<Vec<u8>, NpyError> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let small = |n: usize| u32::try_from(n).ok().filter(|&v| v != u32::MAX);
    let mut used: Vec<String> = Vec::new();
    for (name, array) in arrays {
        // A repeated name gets `_1`, `_2`, … so every member can be read.
        let mut member = format!("{name}.npy");
        let mut k = 0;
        while used.contains(&member) {
            k += 1;
            member = format!("{name}_{k}.npy");
        }
        used.push(member.clone());
        let data = write(array);
        let (Some(size), Some(offset), Ok(name_len)) =
            (small(data.len()), small(out.len()), u16::try_from(member.len()))
        else {
            return Err(NpyError::NpzTooLarge);
        };
        let crc = crc32(&data);
        // Version needed 2.0, no flags, stored, no time or date.
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes());
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&name_len.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(member.as_bytes());
        out.extend_from_slice(&data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(member.as_bytes());
    }
    let (Some(cd_offset), Some(cd_size), Ok(count)) =
        (small(out.len()), small(central.len()), u16::try_from(arrays.len()))
    else {
        return Err(NpyError::NpzTooLarge);
    };
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

/// The arrays of an `.npz` archive, by member name without `.npy`, in the archive's order.
pub fn read_npz(bytes: &[u8]) -> Result<Vec<(String, Array)>, NpyError> {
    let bad = |why: &str| NpyError::NpzMalformed(why.to_string());
    let u16_at = |i: usize| -> Result<usize, NpyError> {
        let b = bytes.get(i..i + 2).ok_or_else(|| bad("truncated"))?;
        Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |i: usize| -> Result<usize, NpyError> {
        let b = bytes.get(i..i + 4).ok_or_else(|| bad("truncated"))?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    // The end-of-central-directory record: 22 bytes plus a comment of at most 65 535.
    let lowest = bytes.len().saturating_sub(22 + 65_535);
    let end = (lowest..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| bytes[i..].starts_with(&0x0605_4b50u32.to_le_bytes()))
        .ok_or_else(|| bad("no end-of-central-directory record (not a ZIP archive)"))?;
    let (count, cd_offset) = (u16_at(end + 10)?, u32_at(end + 16)?);
    let mut out = Vec::new();
    let mut at = cd_offset;
    for _ in 0..count {
        if u32_at(at)? != 0x0201_4b50 {
            return Err(bad("a central directory entry has a wrong signature"));
        }
        let (method, crc, size) = (u16_at(at + 10)?, u32_at(at + 16)?, u32_at(at + 20)?);
        let (name_len, extra, comment) = (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        let local = u32_at(at + 42)?;
        let name = bytes.get(at + 46..at + 46 + name_len).ok_or_else(|| bad("truncated name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        at += 46 + name_len + extra + comment;
        if method != 0 {
            return Err(NpyError::NpzCompressed(name));
        }
        if u32_at(local)? != 0x0403_4b50 {
            return Err(bad("a member's local header has a wrong signature"));
        }
        let start = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = start
            .checked_add(size)
            .and_then(|stop| bytes.get(start..stop))
            .ok_or_else(|| bad("a member runs past the end of the archive"))?;
        if crc32(data) as usize != crc {
            return Err(bad(&format!("member `{name}` fails its CRC-32 check")));
        }
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push((key, crate::read(data)?));
    }
    Ok(out)
}

/// The arrays of the `.npz` archive `path` ([`read_npz`]).
pub fn read_npz_file(path: &Path) -> Result<Vec<(String, Array)>, NpyError> {
    read_npz(&std::fs::read(path).map_err(|source| io_error(path, source))?)
}

/// Write `arrays` to the `.npz` archive `path` ([`write_npz`]).
pub fn write_npz_file(path: &Path, arrays: &[(&str, &Array)]) -> Result<(), NpyError> {
    std::fs::write(path, write_npz(arrays)?).map_err(|source| io_error(path, source))
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn repeated_names_get_distinct_members() {
        let a = crate::Array::new(vec![1], crate::Data::F64(vec![1.0])).unwrap();
        let bytes = super::write_npz(&[("h", &a), ("h", &a), ("s", &a)]).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for name in ["h.npy", "h_1.npy", "s.npy"] {
            // Each name appears in its local header and in the central directory.
            assert_eq!(text.matches(name).count(), 2, "{name}");
        }
    }

    #[test]
    fn archives_read_back_and_malformed_ones_are_typed_errors() {
        use crate::{Array, Data, NpyError};
        let a = Array::new(vec![2], Data::F64(vec![1.5, -2.0])).unwrap();
        let b = Array::new(vec![1, 3], Data::I32(vec![1, 2, 3])).unwrap();
        let bytes = super::write_npz(&[("params.w", &a), ("tok", &b)]).unwrap();
        let back = super::read_npz(&bytes).unwrap();
        assert_eq!(back, vec![("params.w".to_string(), a.clone()), ("tok".to_string(), b)]);
        // Every truncation, and every flipped byte, gives an error or (for a flip in a header
        // field the reader does not use) the same arrays: never a panic.
        for n in 0..bytes.len() {
            assert!(super::read_npz(&bytes[..n]).is_err(), "truncated to {n}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x5a;
            let _ = super::read_npz(&bad);
        }
        // A deflated member (method 8) is refused by name.
        let mut deflated = super::write_npz(&[("w", &a)]).unwrap();
        let cd = deflated.len() - 22 - (46 + 5);
        deflated[cd + 10] = 8;
        assert!(
            matches!(super::read_npz(&deflated), Err(NpyError::NpzCompressed(n)) if n == "w.npy")
        );
    }

    #[test]
    fn crc32_of_the_check_string() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}

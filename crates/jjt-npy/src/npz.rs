//! Writing several arrays to one `.npz` archive, as `numpy.savez` does: a ZIP archive holding
//! one `NAME.npy` member per array (a repeated name as `NAME_1.npy`, …), stored without compression (method 0, the CRC-32 of each
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
    fn crc32_of_the_check_string() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}

//! The part of ONNX's protobuf schema jjt reads, decoded by hand from the wire format (no
//! generated code, no `protoc`): `ModelProto`, `GraphProto`, `NodeProto`, `AttributeProto`,
//! `TensorProto`, `ValueInfoProto` and the type and shape messages under it. Unknown fields are
//! skipped, as protobuf requires.
//!
//! Every length is checked against the bytes present before it is used, nesting is bounded by
//! [`MAX_DEPTH`], and nothing is allocated from a count read from the file: repeated fields grow
//! one decoded element at a time, so a malformed file gives a [`ProtoError`], never a panic or a
//! huge allocation.

/// Deepest nesting of messages accepted (a graph inside an attribute inside a node…).
pub const MAX_DEPTH: usize = 32;

/// A malformed protobuf.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed ONNX protobuf at byte {offset}: {msg}")]
pub struct ProtoError {
    /// Where in the message being read.
    pub offset: usize,
    /// What.
    pub msg: String,
}

/// One field's value on the wire.
#[derive(Clone, Copy, Debug)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn err(&self, msg: &str) -> ProtoError {
        ProtoError { offset: self.pos, msg: msg.to_string() }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| self.err("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| self.err(&format!("a field of {n} bytes past the end")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtoError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let num = u32::try_from(key >> 3).map_err(|_| self.err("field number too large"))?;
        let w = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or([0; 8]))),
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
                Wire::Bytes(self.take(n)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or([0; 4]))),
            t => return Err(self.err(&format!("unsupported wire type {t}"))),
        };
        Ok(Some((num, w)))
    }
}

fn string(w: Wire<'_>, what: &str) -> Result<String, ProtoError> {
    match w {
        Wire::Bytes(b) => String::from_utf8(b.to_vec())
            .map_err(|_| ProtoError { offset: 0, msg: format!("{what} is not UTF-8") }),
        _ => Err(ProtoError { offset: 0, msg: format!("{what}: wrong wire type") }),
    }
}

fn bytes<'a>(w: Wire<'a>, what: &str) -> Result<&'a [u8], ProtoError> {
    match w {
        Wire::Bytes(b) => Ok(b),
        _ => Err(ProtoError { offset: 0, msg: format!("{what}: wrong wire type") }),
    }
}

fn int(w: Wire<'_>, what: &str) -> Result<i64, ProtoError> {
    match w {
        Wire::Varint(v) => Ok(v as i64),
        _ => Err(ProtoError { offset: 0, msg: format!("{what}: wrong wire type") }),
    }
}

/// Repeated varints, packed or not, appended to `out`.
fn ints(w: Wire<'_>, out: &mut Vec<i64>, what: &str) -> Result<(), ProtoError> {
    match w {
        Wire::Varint(v) => out.push(v as i64),
        Wire::Bytes(b) => {
            let mut r = Reader::new(b);
            while r.pos < b.len() {
                out.push(r.varint()? as i64);
            }
        }
        _ => return Err(ProtoError { offset: 0, msg: format!("{what}: wrong wire type") }),
    }
    Ok(())
}

/// Repeated 32-bit floats, packed or not.
fn floats(w: Wire<'_>, out: &mut Vec<f64>, what: &str) -> Result<(), ProtoError> {
    match w {
        Wire::Fixed32(v) => out.push(f64::from(f32::from_bits(v))),
        Wire::Bytes(b) if b.len() % 4 == 0 => {
            out.extend(
                b.chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))),
            );
        }
        _ => return Err(ProtoError { offset: 0, msg: format!("{what}: wrong wire type") }),
    }
    Ok(())
}

/// Repeated 64-bit floats, packed or not.
fn doubles(w: Wire<'_>, out: &mut Vec<f64>, what: &str) -> Result<(), ProtoError> {
    match w {
        Wire::Fixed64(v) => out.push(f64::from_bits(v)),
        Wire::Bytes(b) if b.len() % 8 == 0 => {
            out.extend(
                b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
            );
        }
        _ => return Err(ProtoError { offset: 0, msg: format!("{what}: wrong wire type") }),
    }
    Ok(())
}

/// `ModelProto`.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// `ir_version`.
    pub ir_version: i64,
    /// `opset_import`: (domain, version).
    pub opsets: Vec<(String, i64)>,
    /// `graph`.
    pub graph: Graph,
}

/// `GraphProto`.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// `name`.
    pub name: String,
    /// `node`, in topological order.
    pub nodes: Vec<Node>,
    /// `initializer`.
    pub initializers: Vec<TensorData>,
    /// `input`.
    pub inputs: Vec<ValueInfo>,
    /// `output`.
    pub outputs: Vec<ValueInfo>,
    /// Whether the graph holds sparse initializers (not read).
    pub sparse: bool,
}

/// `NodeProto`.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// `name`.
    pub name: String,
    /// `op_type`.
    pub op: String,
    /// `domain`.
    pub domain: String,
    /// `input` (an empty name is an omitted optional input).
    pub inputs: Vec<String>,
    /// `output`.
    pub outputs: Vec<String>,
    /// `attribute`.
    pub attrs: Vec<Attribute>,
}

/// `AttributeProto` (the kinds jjt reads; a graph attribute is only noted).
#[derive(Clone, Debug, Default)]
pub struct Attribute {
    /// `name`.
    pub name: String,
    /// `f`.
    pub f: Option<f64>,
    /// `i`.
    pub i: Option<i64>,
    /// `s`.
    pub s: Option<String>,
    /// `t`.
    pub t: Option<TensorData>,
    /// `floats`.
    pub floats: Vec<f64>,
    /// `ints`.
    pub ints: Vec<i64>,
    /// Whether it holds a subgraph (`g`, `graphs`).
    pub graph: bool,
}

/// `TensorProto`: its values decoded to f64 (integers exactly up to 2⁵³; i64 values outside
/// i32 are caught where they are converted), or a reference to external data.
#[derive(Clone, Debug, Default)]
pub struct TensorData {
    /// `name`.
    pub name: String,
    /// `dims`.
    pub dims: Vec<i64>,
    /// `data_type` (1 float, 6 int32, 7 int64, 9 bool, 11 double, …).
    pub data_type: i32,
    /// The values (empty for external data until read).
    pub values: Vec<f64>,
    /// `raw_data`, kept undecoded until the type is known.
    pub raw: Vec<u8>,
    /// `external_data` entries (`location`, `offset`, `length`).
    pub external: Vec<(String, String)>,
}

/// `ValueInfoProto` with a tensor type: name, element type, dimensions (`None`: symbolic or
/// unknown).
#[derive(Clone, Debug, Default)]
pub struct ValueInfo {
    /// `name`.
    pub name: String,
    /// `elem_type`.
    pub elem_type: i32,
    /// Dimensions, `None` where `dim_param` (or nothing) is given.
    pub dims: Vec<Option<i64>>,
    /// Whether a shape is given at all.
    pub has_shape: bool,
}

/// Decode a `ModelProto`.
pub fn decode_model(buf: &[u8]) -> Result<Model, ProtoError> {
    let mut r = Reader::new(buf);
    let mut m = Model::default();
    let mut seen_graph = false;
    while let Some((num, w)) = r.field()? {
        match num {
            1 => m.ir_version = int(w, "ir_version")?,
            8 => {
                let mut o = Reader::new(bytes(w, "opset_import")?);
                let (mut d, mut v) = (String::new(), 0);
                while let Some((n, w)) = o.field()? {
                    match n {
                        1 => d = string(w, "opset domain")?,
                        2 => v = int(w, "opset version")?,
                        _ => {}
                    }
                }
                m.opsets.push((d, v));
            }
            7 => {
                m.graph = decode_graph(bytes(w, "graph")?, 1)?;
                seen_graph = true;
            }
            _ => {}
        }
    }
    if !seen_graph {
        return Err(ProtoError {
            offset: buf.len(),
            msg: "no graph (is this an ONNX model?)".into(),
        });
    }
    Ok(m)
}

fn decode_graph(buf: &[u8], depth: usize) -> Result<Graph, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError {
            offset: 0,
            msg: format!("messages nested deeper than {MAX_DEPTH}"),
        });
    }
    let mut r = Reader::new(buf);
    let mut g = Graph::default();
    while let Some((num, w)) = r.field()? {
        match num {
            1 => g.nodes.push(decode_node(bytes(w, "node")?, depth + 1)?),
            2 => g.name = string(w, "graph name")?,
            5 => g.initializers.push(decode_tensor(bytes(w, "initializer")?)?),
            11 => g.inputs.push(decode_value_info(bytes(w, "input")?)?),
            12 => g.outputs.push(decode_value_info(bytes(w, "output")?)?),
            15 => g.sparse = true,
            _ => {}
        }
    }
    Ok(g)
}

fn decode_node(buf: &[u8], depth: usize) -> Result<Node, ProtoError> {
    let mut r = Reader::new(buf);
    let mut n = Node::default();
    while let Some((num, w)) = r.field()? {
        match num {
            1 => n.inputs.push(string(w, "node input")?),
            2 => n.outputs.push(string(w, "node output")?),
            3 => n.name = string(w, "node name")?,
            4 => n.op = string(w, "op_type")?,
            5 => n.attrs.push(decode_attribute(bytes(w, "attribute")?, depth + 1)?),
            7 => n.domain = string(w, "node domain")?,
            _ => {}
        }
    }
    Ok(n)
}

fn decode_attribute(buf: &[u8], depth: usize) -> Result<Attribute, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError {
            offset: 0,
            msg: format!("messages nested deeper than {MAX_DEPTH}"),
        });
    }
    let mut r = Reader::new(buf);
    let mut a = Attribute::default();
    while let Some((num, w)) = r.field()? {
        match num {
            1 => a.name = string(w, "attribute name")?,
            2 => {
                let mut v = Vec::new();
                floats(w, &mut v, "attribute f")?;
                a.f = v.first().copied();
            }
            3 => a.i = Some(int(w, "attribute i")?),
            4 => a.s = Some(String::from_utf8_lossy(bytes(w, "attribute s")?).into_owned()),
            5 => a.t = Some(decode_tensor(bytes(w, "attribute t")?)?),
            6 | 11 => a.graph = true,
            7 => floats(w, &mut a.floats, "attribute floats")?,
            8 => ints(w, &mut a.ints, "attribute ints")?,
            _ => {}
        }
    }
    Ok(a)
}

fn decode_tensor(buf: &[u8]) -> Result<TensorData, ProtoError> {
    let mut r = Reader::new(buf);
    let mut t = TensorData::default();
    while let Some((num, w)) = r.field()? {
        match num {
            1 => ints(w, &mut t.dims, "tensor dims")?,
            2 => t.data_type = int(w, "data_type")? as i32,
            4 => floats(w, &mut t.values, "float_data")?,
            5 | 7 => {
                let mut v = Vec::new();
                ints(w, &mut v, "int data")?;
                // int32_data holds every narrow type as varints; int64_data the 64-bit ones.
                t.values.extend(
                    v.iter().map(|&x| if num == 5 { f64::from(x as i32) } else { x as f64 }),
                );
            }
            8 => t.name = string(w, "tensor name")?,
            9 => t.raw = bytes(w, "raw_data")?.to_vec(),
            10 => doubles(w, &mut t.values, "double_data")?,
            13 => {
                let mut e = Reader::new(bytes(w, "external_data")?);
                let (mut k, mut v) = (String::new(), String::new());
                while let Some((n, w)) = e.field()? {
                    match n {
                        1 => k = string(w, "external_data key")?,
                        2 => v = string(w, "external_data value")?,
                        _ => {}
                    }
                }
                t.external.push((k, v));
            }
            _ => {}
        }
    }
    Ok(t)
}

fn decode_value_info(buf: &[u8]) -> Result<ValueInfo, ProtoError> {
    let mut r = Reader::new(buf);
    let mut v = ValueInfo::default();
    while let Some((num, w)) = r.field()? {
        match num {
            1 => v.name = string(w, "value name")?,
            2 => {
                // TypeProto { tensor_type = 1: { elem_type = 1, shape = 2 } }.
                let mut tp = Reader::new(bytes(w, "type")?);
                while let Some((n, w)) = tp.field()? {
                    if n != 1 {
                        continue;
                    }
                    let mut tt = Reader::new(bytes(w, "tensor_type")?);
                    while let Some((n, w)) = tt.field()? {
                        match n {
                            1 => v.elem_type = int(w, "elem_type")? as i32,
                            2 => {
                                v.has_shape = true;
                                let mut sh = Reader::new(bytes(w, "shape")?);
                                while let Some((n, w)) = sh.field()? {
                                    if n != 1 {
                                        continue;
                                    }
                                    let mut d = Reader::new(bytes(w, "dim")?);
                                    let mut value = None;
                                    while let Some((n, w)) = d.field()? {
                                        if n == 1 {
                                            value = Some(int(w, "dim_value")?);
                                        }
                                    }
                                    v.dims.push(value);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_truncation() {
        let mut r = Reader::new(&[0x96, 0x01]);
        assert_eq!(r.varint().unwrap(), 150);
        assert!(Reader::new(&[0x96]).varint().is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        // A length past the end of the buffer.
        let mut r = Reader::new(&[0x0a, 0x05, 1, 2]);
        assert!(r.field().is_err());
        assert!(decode_model(&[]).is_err());
    }
}

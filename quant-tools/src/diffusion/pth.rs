//! PyTorch zip checkpoints (`torch.save` since 1.6) read without Python.
//!
//! The zip holds `<prefix>/data.pkl`, a pickle describing the saved object, and
//! `<prefix>/data/<key>`, one raw storage per key (little-endian, as
//! `<prefix>/byteorder` says when present). A state dict pickles as an
//! `collections.OrderedDict` whose values are
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
//! hooks)` calls, where `storage` is a persistent id
//! `('storage', torch.FloatStorage, key, location, numel)`.
//!
//! [`Pickle`] runs the subset of the pickle protocol (versions 2 to 5) that such a
//! file uses, with every read bounds-checked; any other opcode or callable is a
//! [`DiffusionError::Pickle`]. Nothing is executed: globals are names, and only
//! `OrderedDict`, `_rebuild_tensor_v2` and `_rebuild_parameter` are interpreted.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::{read_file, DiffusionError, Tensor, Weights};

/// A value on the pickle stack.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict (or `OrderedDict`), keys in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A global `module.name` (never imported).
    Global(String, String),
    /// A persistent id (a storage reference in PyTorch files).
    PersId(Box<Value>),
    /// A tensor view of a storage.
    Tensor(TensorRef),
    /// A call `callable(*args)` that is kept as data, not interpreted.
    Call(Box<Value>, Box<Value>),
    /// The stack mark (internal).
    Mark,
}

/// A tensor as a state dict describes it: a strided view into a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Storage key (the file `data/<key>`).
    pub storage_key: String,
    /// Storage type name (`FloatStorage`, ...).
    pub storage_type: String,
    /// Number of elements of the storage.
    pub storage_numel: u64,
    /// Offset of element `[0, ..., 0]` in the storage, in elements.
    pub offset: u64,
    /// Dimensions, outermost first.
    pub shape: Vec<u64>,
    /// Stride of each dimension, in elements.
    pub stride: Vec<u64>,
}

/// A pickle interpreter for PyTorch state dicts.
#[derive(Debug)]
pub struct Pickle<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Pickle<'a> {
    /// Runs the pickle in `data` and returns the object it builds.
    pub fn load(data: &'a [u8]) -> Result<Value, DiffusionError> {
        let mut p = Pickle {
            data,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
        };
        p.run()
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, DiffusionError> {
        Err(DiffusionError::Pickle {
            offset: self.pos,
            msg: msg.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DiffusionError> {
        if n > self.data.len() - self.pos {
            return self.err(format!("truncated: {n} bytes wanted"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DiffusionError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DiffusionError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DiffusionError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DiffusionError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn line(&mut self) -> Result<String, DiffusionError> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("unterminated line");
        };
        let s = String::from_utf8(rest[..n].to_vec());
        self.pos += n + 1;
        match s {
            Ok(s) => Ok(s),
            Err(_) => self.err("line is not UTF-8"),
        }
    }

    fn string(&mut self, n: u64) -> Result<String, DiffusionError> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => self.err("string is not UTF-8"),
        }
    }

    fn pop(&mut self) -> Result<Value, DiffusionError> {
        match self.stack.pop() {
            Some(Value::Mark) | None => self.err("stack underflow"),
            Some(v) => Ok(v),
        }
    }

    /// Pops everything down to the topmost mark (and the mark).
    fn pop_mark(&mut self) -> Result<Vec<Value>, DiffusionError> {
        let Some(i) = self.stack.iter().rposition(|v| *v == Value::Mark) else {
            return self.err("no mark on the stack");
        };
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top_mut(&mut self) -> Result<&mut Value, DiffusionError> {
        let pos = self.pos;
        match self.stack.last_mut() {
            Some(v) if *v != Value::Mark => Ok(v),
            _ => Err(DiffusionError::Pickle {
                offset: pos,
                msg: "stack underflow".into(),
            }),
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<(), DiffusionError> {
        let v = match self.stack.last() {
            Some(v) if *v != Value::Mark => v.clone(),
            _ => return self.err("memoize of an empty stack"),
        };
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), DiffusionError> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.stack.push(v);
                Ok(())
            }
            None => self.err(format!("memo key {key} not set")),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), DiffusionError> {
        if !items.len().is_multiple_of(2) {
            return self.err("odd number of dict items");
        }
        let pos = self.pos;
        match self.top_mut()? {
            Value::Dict(d) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            other => Err(DiffusionError::Pickle {
                offset: pos,
                msg: format!("SETITEM on {}", kind(other)),
            }),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), DiffusionError> {
        let pos = self.pos;
        match self.top_mut()? {
            Value::List(l) => {
                l.extend(items);
                Ok(())
            }
            other => Err(DiffusionError::Pickle {
                offset: pos,
                msg: format!("APPEND on {}", kind(other)),
            }),
        }
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value, DiffusionError> {
        let Value::Tuple(args) = args else {
            return self.err("REDUCE arguments are not a tuple");
        };
        let Value::Global(module, name) = &callable else {
            return Ok(Value::Call(
                Box::new(callable),
                Box::new(Value::Tuple(args)),
            ));
        };
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(Vec::new())),
            ("torch._utils", "_rebuild_tensor_v2") => self.rebuild_tensor(&args),
            ("torch._utils", "_rebuild_parameter") => match args.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                _ => self.err("_rebuild_parameter without a tensor"),
            },
            _ => Ok(Value::Call(
                Box::new(callable),
                Box::new(Value::Tuple(args)),
            )),
        }
    }

    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value, DiffusionError> {
        let bad = |m: &str| DiffusionError::Pickle {
            offset: self.pos,
            msg: format!("_rebuild_tensor_v2: {m}"),
        };
        if args.len() < 4 {
            return Err(bad("fewer than 4 arguments"));
        }
        let Value::PersId(pid) = &args[0] else {
            return Err(bad("storage is not a persistent id"));
        };
        let Value::Tuple(pid) = pid.as_ref() else {
            return Err(bad("persistent id is not a tuple"));
        };
        let (storage_type, storage_key, numel) = match pid.as_slice() {
            [Value::Str(tag), Value::Global(_, ty), Value::Str(key), _loc, Value::Int(n)]
                if tag == "storage" && *n >= 0 =>
            {
                (ty.clone(), key.clone(), *n as u64)
            }
            _ => {
                return Err(bad(
                    "persistent id is not ('storage', type, key, location, numel)",
                ))
            }
        };
        let uint = |v: &Value| match v {
            Value::Int(i) if *i >= 0 => Some(*i as u64),
            _ => None,
        };
        let offset = uint(&args[1]).ok_or_else(|| bad("offset"))?;
        let ints = |v: &Value| -> Option<Vec<u64>> {
            match v {
                Value::Tuple(t) => t.iter().map(uint).collect(),
                _ => None,
            }
        };
        let shape = ints(&args[2]).ok_or_else(|| bad("size"))?;
        let stride = ints(&args[3]).ok_or_else(|| bad("stride"))?;
        if shape.len() != stride.len() {
            return Err(bad("size and stride of different ranks"));
        }
        Ok(Value::Tensor(TensorRef {
            storage_key,
            storage_type,
            storage_numel: numel,
            offset,
            shape,
            stride,
        }))
    }

    fn run(&mut self) -> Result<Value, DiffusionError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let v = self.u8()?;
                    if !(2..=5).contains(&v) {
                        return self.err(format!("protocol {v}"));
                    }
                }
                0x95 => {
                    // FRAME: a length hint only.
                    self.u64()?;
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.stack.push(Value::Mark),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    // LONG1: little-endian two's complement, up to 8 bytes here.
                    let n = usize::from(self.u8()?);
                    if n > 8 {
                        return self.err("LONG1 wider than 64 bits");
                    }
                    let b = self.take(n)?;
                    let mut a = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    a[..n].copy_from_slice(b);
                    self.stack.push(Value::Int(i64::from_le_bytes(a)));
                }
                b'G' => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(self.take(8)?);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.u32()?;
                    let s = self.string(u64::from(n))?;
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.u8()?;
                    let s = self.string(u64::from(n))?;
                    self.stack.push(Value::Str(s));
                }
                0x8d => {
                    let n = self.u64()?;
                    let s = self.string(n)?;
                    self.stack.push(Value::Str(s));
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                        _ => return self.err("STACK_GLOBAL of non-strings"),
                    }
                }
                b'q' => {
                    let k = self.u8()?;
                    self.memo_put(u32::from(k))?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    // MEMOIZE
                    let k = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()?;
                    self.memo_get(u32::from(k))?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85 => {
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a]));
                }
                0x86 => {
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a, b]));
                }
                0x87 => {
                    let c = self.pop()?;
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a, b, c]));
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'Q' => {
                    // BINPERSID
                    let pid = self.pop()?;
                    self.stack.push(Value::PersId(Box::new(pid)));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args), kept as data.
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.reduce(cls, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD: state for the object below; a state dict's objects
                    // (OrderedDict, tensors) take an empty state, which is dropped.
                    self.pop()?;
                    self.top_mut()?;
                }
                other => return self.err(format!("unsupported opcode 0x{other:02x}")),
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Global(..) => "global",
        Value::PersId(_) => "persistent id",
        Value::Tensor(_) => "tensor",
        Value::Call(..) => "call",
        Value::Mark => "mark",
    }
}

/// One tensor of a `.pth` state dict: where it came from and its values,
/// made contiguous.
#[derive(Debug, Clone)]
pub struct PthTensor {
    /// The state-dict name.
    pub name: String,
    /// The strided view as the pickle describes it.
    pub view: TensorRef,
    /// The values, row-major in `view.shape`.
    pub tensor: Tensor,
}

/// Reads a PyTorch zip checkpoint holding a state dict, in the pickle's order.
pub fn read_state_dict(path: &Path) -> Result<Vec<PthTensor>, DiffusionError> {
    parse_state_dict(&read_file(path)?)
}

/// Like [`read_state_dict`] for the bytes of the file.
pub fn parse_state_dict(bytes: &[u8]) -> Result<Vec<PthTensor>, DiffusionError> {
    let zerr = |e: zip::result::ZipError| DiffusionError::Zip(e.to_string());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zerr)?;
    let pkl_name = zip
        .file_names()
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| DiffusionError::Zip("no data.pkl".into()))?;
    let prefix = pkl_name.strip_suffix("data.pkl").unwrap_or("").to_string();
    let read_entry = |zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
                      name: &str,
                      limit: u64|
     -> Result<Option<Vec<u8>>, DiffusionError> {
        let mut f = match zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(zerr(e)),
        };
        if f.size() > limit {
            return Err(DiffusionError::Zip(format!(
                "{name}: {} bytes, more than {limit}",
                f.size()
            )));
        }
        let mut out = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut out)
            .map_err(|e| DiffusionError::Zip(format!("{name}: {e}")))?;
        Ok(Some(out))
    };
    let limit = bytes.len() as u64 * 64 + 1024;
    if let Some(order) = read_entry(&mut zip, &format!("{prefix}byteorder"), 64)? {
        if order.trim_ascii() != b"little" {
            return Err(DiffusionError::Zip(format!(
                "byteorder {:?}, only little-endian is supported",
                String::from_utf8_lossy(&order)
            )));
        }
    }
    let pkl = read_entry(&mut zip, &pkl_name, limit)?
        .ok_or_else(|| DiffusionError::Zip("no data.pkl".into()))?;
    let Value::Dict(items) = Pickle::load(&pkl)? else {
        return Err(DiffusionError::Pickle {
            offset: 0,
            msg: "the pickled object is not a dict".into(),
        });
    };
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let Value::Str(name) = k else {
            return Err(DiffusionError::Pickle {
                offset: 0,
                msg: format!("state-dict key is a {}", kind(&k)),
            });
        };
        let Value::Tensor(view) = v else {
            return Err(DiffusionError::Pickle {
                offset: 0,
                msg: format!("{name} is a {}, not a tensor", kind(&v)),
            });
        };
        if view.storage_type != "FloatStorage" {
            return Err(DiffusionError::UnsupportedType {
                name,
                kind: view.storage_type.clone(),
            });
        }
        if !storages.contains_key(&view.storage_key) {
            let entry = format!("{prefix}data/{}", view.storage_key);
            let data = read_entry(&mut zip, &entry, limit)?
                .ok_or_else(|| DiffusionError::Zip(format!("{name}: no entry {entry}")))?;
            storages.insert(view.storage_key.clone(), data);
        }
        let raw = &storages[&view.storage_key];
        let tensor = gather(&name, &view, raw)?;
        out.push(PthTensor { name, view, tensor });
    }
    Ok(out)
}

/// Copies the strided view out of a little-endian f32 storage, checking that
/// every element lies inside it.
fn gather(name: &str, v: &TensorRef, raw: &[u8]) -> Result<Tensor, DiffusionError> {
    let bad = |m: String| DiffusionError::Zip(format!("{name}: {m}"));
    if raw.len() as u64 != v.storage_numel.saturating_mul(4) {
        return Err(bad(format!(
            "storage of {} bytes for {} f32 elements",
            raw.len(),
            v.storage_numel
        )));
    }
    let mut numel: u64 = 1;
    let mut last: u64 = v.offset;
    for (&d, &s) in v.shape.iter().zip(&v.stride) {
        numel = numel
            .checked_mul(d)
            .ok_or_else(|| bad("size overflows".into()))?;
        if d > 0 {
            last = (d - 1)
                .checked_mul(s)
                .and_then(|x| x.checked_add(last))
                .ok_or_else(|| bad("extent overflows".into()))?;
        }
    }
    if numel > 0 && last >= v.storage_numel {
        return Err(bad(format!(
            "view reaches element {last} of a {}-element storage",
            v.storage_numel
        )));
    }
    let at = |i: u64| {
        let i = i as usize * 4;
        f32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]])
    };
    let shape: Vec<usize> = v.shape.iter().map(|&d| d as usize).collect();
    let mut data = Vec::with_capacity(numel as usize);
    let mut idx = vec![0u64; shape.len()];
    for _ in 0..numel {
        let off: u64 = v.offset + idx.iter().zip(&v.stride).map(|(i, s)| i * s).sum::<u64>();
        data.push(at(off));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < v.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(Tensor { shape, data })
}

/// The state dict as [`Weights`] (names as in the file).
pub fn to_weights(tensors: Vec<PthTensor>) -> Result<Weights, DiffusionError> {
    let mut w = Weights::default();
    for t in tensors {
        if w.tensors.insert(t.name.clone(), t.tensor).is_some() {
            return Err(DiffusionError::Pickle {
                offset: 0,
                msg: format!("{} twice in the state dict", t.name),
            });
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pickles() {
        // {'a': (1, -2, 'x')} at protocol 2 (as Python writes it).
        let p = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01J\xfe\xff\xff\xffX\x01\x00\x00\x00xq\x02\x87q\x03s.";
        let v = Pickle::load(p).unwrap();
        assert_eq!(
            v,
            Value::Dict(vec![(
                Value::Str("a".into()),
                Value::Tuple(vec![Value::Int(1), Value::Int(-2), Value::Str("x".into())])
            )])
        );
        // Every prefix is an error, not a panic.
        for n in 0..p.len() {
            assert!(Pickle::load(&p[..n]).is_err(), "prefix {n}");
        }
        // An opcode outside the subset.
        assert!(Pickle::load(b"\x80\x02I1\n.").is_err());
        // A memo read that was never written.
        assert!(Pickle::load(b"\x80\x02h\x05.").is_err());
    }

    #[test]
    fn strided_gather() {
        // A transposed 2x3 view of a 6-element storage [0..6).
        let raw: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let v = TensorRef {
            storage_key: "0".into(),
            storage_type: "FloatStorage".into(),
            storage_numel: 6,
            offset: 0,
            shape: vec![3, 2],
            stride: vec![1, 3],
        };
        let t = gather("t", &v, &raw).unwrap();
        assert_eq!(t.data, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let out_of_range = TensorRef {
            offset: 1,
            ..v.clone()
        };
        assert!(gather("t", &out_of_range, &raw).is_err());
    }
}

//! The subset of the pickle protocol (versions 2 to 5) that a PyTorch state dict
//! uses, run without Python and without executing anything: globals are names, and
//! only `OrderedDict`, `_rebuild_tensor_v2` and `_rebuild_parameter` are
//! interpreted. Any other opcode is a [`DiffusionError::Pickle`].
//!
//! Hostile pickles are bounded in memory and time by the bytes of the pickle:
//! - containers are shared ([`Node`], an `Rc`), so a memo read pushes a reference
//!   as Python does, never a copy (a copy made a 462-byte pickle grow past 4 GiB
//!   by doubling);
//! - every opcode creates at most a constant number of values, and none walks the
//!   stack: marks are kept on their own stack of stack lengths, as CPython does;
//! - dropping a value is iterative ([`Node`]'s `Drop`), so a tuple nested a
//!   million deep is freed without recursion; nothing else recurses into values.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use super::DiffusionError;

/// A shared container of values: a tuple, list or dict (keys and values
/// alternating), a persistent id (one value) or a kept call (callable, args).
pub struct Node(Rc<RefCell<Vec<Value>>>);

impl Node {
    /// A new container holding `items`.
    pub fn new(items: Vec<Value>) -> Node {
        Node(Rc::new(RefCell::new(items)))
    }

    /// A copy of the items (cheap: containers inside are shared).
    pub fn items(&self) -> Vec<Value> {
        self.0.borrow().clone()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Item `i` (shared).
    pub fn get(&self, i: usize) -> Option<Value> {
        self.0.borrow().get(i).cloned()
    }

    fn extend(&self, items: Vec<Value>) {
        self.0.borrow_mut().extend(items);
    }
}

impl Clone for Node {
    fn clone(&self) -> Self {
        Node(Rc::clone(&self.0))
    }
}

impl fmt::Debug for Node {
    /// Not recursive (a value may be deep or cyclic): only the item count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.try_borrow() {
            Ok(items) => write!(f, "Node({} items)", items.len()),
            Err(_) => write!(f, "Node(borrowed)"),
        }
    }
}

impl Drop for Node {
    /// Frees a whole tree without recursion: the items of every container that
    /// nothing else shares are moved onto one work list before it is dropped.
    fn drop(&mut self) {
        let Some(cell) = Rc::get_mut(&mut self.0) else {
            return;
        };
        let mut pending = std::mem::take(cell.get_mut());
        while let Some(mut v) = pending.pop() {
            if let Some(node) = v.node_mut() {
                if let Some(cell) = Rc::get_mut(&mut node.0) {
                    pending.append(cell.get_mut());
                }
            }
        }
    }
}

/// A value on the pickle stack.
#[derive(Debug, Clone)]
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
    Str(Rc<String>),
    /// A byte string.
    Bytes(Rc<Vec<u8>>),
    /// A tuple.
    Tuple(Node),
    /// A list.
    List(Node),
    /// A dict (or `OrderedDict`): keys and values alternate, in insertion order.
    Dict(Node),
    /// A global `module.name` (never imported).
    Global(Rc<(String, String)>),
    /// A persistent id (a storage reference in PyTorch files): one value.
    PersId(Node),
    /// A tensor view of a storage.
    Tensor(Rc<TensorRef>),
    /// A call `callable(*args)` kept as data, not interpreted: two values.
    Call(Node),
}

impl Value {
    fn node_mut(&mut self) -> Option<&mut Node> {
        match self {
            Value::Tuple(n) | Value::List(n) | Value::Dict(n) | Value::PersId(n) => Some(n),
            Value::Call(n) => Some(n),
            _ => None,
        }
    }

    /// A short name of the value's kind (for messages).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::PersId(_) => "persistent id",
            Value::Tensor(_) => "tensor",
            Value::Call(..) => "call",
        }
    }

    /// A tuple of the items.
    pub fn tuple(items: Vec<Value>) -> Value {
        Value::Tuple(Node::new(items))
    }
}

/// A tensor as a state dict describes it: a strided view into a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Most dimensions of a tensor view (PyTorch's own limit is 64).
pub const MAX_RANK: usize = 64;

/// Bytes the machine may build per byte of pickle (plus [`BUILD_SLACK`]): a
/// state dict builds at most about 12 per byte (short names); a pickle of
/// one-byte opcodes that each make a container would build about 80.
pub const BUILD_FACTOR: u64 = 32;
/// Bytes the machine may build whatever the pickle's length.
pub const BUILD_SLACK: u64 = 1 << 20;
/// Bytes counted per container (its `Rc<RefCell<Vec>>`).
const NODE_BYTES: u64 = 48;
/// Bytes counted per value held (on the stack, in a container or the memo).
const VALUE_BYTES: u64 = 16;

/// A pickle machine for PyTorch state dicts.
#[derive(Debug)]
pub struct Pickle<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack lengths at each open mark.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Bytes the values built so far may still take.
    budget: u64,
}

impl<'a> Pickle<'a> {
    /// Runs the pickle in `data` and returns the object it builds.
    pub fn load(data: &'a [u8]) -> Result<Value, DiffusionError> {
        let mut p = Pickle {
            data,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            budget: (data.len() as u64)
                .saturating_mul(BUILD_FACTOR)
                .saturating_add(BUILD_SLACK),
        };
        p.run()
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, DiffusionError> {
        Err(DiffusionError::Pickle {
            offset: self.pos,
            msg: msg.into(),
        })
    }

    /// Count `bytes` of values built against the pickle's budget.
    fn charge(&mut self, bytes: u64) -> Result<(), DiffusionError> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => self.err(format!(
                "the pickle builds more than {BUILD_FACTOR} bytes of values per byte"
            )),
        }
    }

    /// A new container of `items`, counted.
    fn node(&mut self, items: Vec<Value>) -> Result<Node, DiffusionError> {
        self.charge(NODE_BYTES + VALUE_BYTES * items.len() as u64)?;
        Ok(Node::new(items))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DiffusionError> {
        if n > self.data.len() - self.pos {
            return self.err(format!("truncated: {n} bytes wanted"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DiffusionError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DiffusionError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DiffusionError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DiffusionError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DiffusionError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn line(&mut self) -> Result<String, DiffusionError> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("unterminated line");
        };
        let s = std::str::from_utf8(&rest[..n]).map(str::to_string);
        self.pos += n + 1;
        match s {
            Ok(s) => Ok(s),
            Err(_) => self.err("line is not UTF-8"),
        }
    }

    fn string(&mut self, n: u64) -> Result<Value, DiffusionError> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => {
                self.charge(32 + n as u64)?;
                Ok(Value::Str(Rc::new(s.to_string())))
            }
            Err(_) => self.err("string is not UTF-8"),
        }
    }

    /// The stack length below which the innermost open mark hides the values.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value, DiffusionError> {
        if self.stack.len() <= self.fence() {
            return self.err("stack underflow");
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }

    /// Pops everything above the innermost mark (and the mark).
    fn pop_mark(&mut self) -> Result<Vec<Value>, DiffusionError> {
        match self.marks.pop() {
            Some(at) => Ok(self.stack.split_off(at)),
            None => self.err("no mark on the stack"),
        }
    }

    fn top(&self) -> Result<&Value, DiffusionError> {
        if self.stack.len() <= self.fence() {
            return self.err("stack underflow");
        }
        match self.stack.last() {
            Some(v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }

    fn push(&mut self, v: Value) -> Result<(), DiffusionError> {
        self.charge(VALUE_BYTES)?;
        self.stack.push(v);
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), DiffusionError> {
        let v = self.top()?.clone();
        self.charge(3 * VALUE_BYTES)?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), DiffusionError> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.push(v)
            }
            None => self.err(format!("memo key {key} not set")),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), DiffusionError> {
        if !items.len().is_multiple_of(2) {
            return self.err("odd number of dict items")?;
        }
        self.charge(2 * VALUE_BYTES * items.len() as u64)?;
        match self.top()? {
            Value::Dict(d) => {
                d.extend(items);
                Ok(())
            }
            other => self.err(format!("SETITEM on {}", other.kind())),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), DiffusionError> {
        self.charge(2 * VALUE_BYTES * items.len() as u64)?;
        match self.top()? {
            Value::List(l) => {
                l.extend(items);
                Ok(())
            }
            other => self.err(format!("APPEND on {}", other.kind())),
        }
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value, DiffusionError> {
        let Value::Tuple(args) = args else {
            return self.err("REDUCE arguments are not a tuple");
        };
        let name = match &callable {
            Value::Global(g) => Some(Rc::clone(g)),
            _ => None,
        };
        self.charge(NODE_BYTES + 2 * VALUE_BYTES)?;
        let kept = |callable, args| Value::Call(Node::new(vec![callable, Value::Tuple(args)]));
        let Some(g) = name else {
            return Ok(kept(callable, args));
        };
        match (g.0.as_str(), g.1.as_str()) {
            ("collections", "OrderedDict") if args.is_empty() => {
                Ok(Value::Dict(self.node(Vec::new())?))
            }
            ("torch._utils", "_rebuild_tensor_v2") => self.rebuild_tensor(&args.items()),
            ("torch._utils", "_rebuild_parameter") => match args.get(0) {
                Some(t @ Value::Tensor(_)) => Ok(t),
                _ => self.err("_rebuild_parameter without a tensor"),
            },
            _ => Ok(kept(callable, args)),
        }
    }

    fn rebuild_tensor(&mut self, args: &[Value]) -> Result<Value, DiffusionError> {
        let bad = |m: &str| DiffusionError::Pickle {
            offset: self.pos,
            msg: format!("_rebuild_tensor_v2: {m}"),
        };
        if args.len() < 4 {
            return Err(bad("fewer than 4 arguments"));
        }
        let pid = match &args[0] {
            Value::PersId(pid) => pid.get(0),
            _ => return Err(bad("storage is not a persistent id")),
        };
        let Some(Value::Tuple(pid)) = pid else {
            return Err(bad("persistent id is not a tuple"));
        };
        let (storage_type, storage_key, numel) = match pid.items().as_slice() {
            [Value::Str(tag), Value::Global(ty), Value::Str(key), _loc, Value::Int(n)]
                if tag.as_str() == "storage" && *n >= 0 =>
            {
                (ty.1.clone(), key.to_string(), *n as u64)
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
                Value::Tuple(t) if t.len() <= MAX_RANK => t.items().iter().map(uint).collect(),
                _ => None,
            }
        };
        let shape = ints(&args[2]).ok_or_else(|| bad("size (at most 64 dimensions)"))?;
        let stride = ints(&args[3]).ok_or_else(|| bad("stride (at most 64 dimensions)"))?;
        if shape.len() != stride.len() {
            return Err(bad("size and stride of different ranks"));
        }
        self.charge(128 + 16 * shape.len() as u64)?;
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage_key,
            storage_type,
            storage_numel: numel,
            offset,
            shape,
            stride,
        })))
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
                b'(' => self.marks.push(self.stack.len()),
                b')' => {
                    let t = self.node(Vec::new())?;
                    self.push(Value::Tuple(t))?;
                }
                b']' => {
                    let l = self.node(Vec::new())?;
                    self.push(Value::List(l))?;
                }
                b'}' => {
                    let d = self.node(Vec::new())?;
                    self.push(Value::Dict(d))?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)))?;
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
                    self.push(Value::Int(i64::from_le_bytes(a)))?;
                }
                b'G' => {
                    let a = self.array()?;
                    self.push(Value::Float(f64::from_be_bytes(a)))?;
                }
                b'X' => {
                    let n = self.u32()?;
                    let s = self.string(u64::from(n))?;
                    self.push(s)?;
                }
                0x8c => {
                    let n = self.u8()?;
                    let s = self.string(u64::from(n))?;
                    self.push(s)?;
                }
                0x8d => {
                    let n = self.u64()?;
                    let s = self.string(n)?;
                    self.push(s)?;
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    self.charge(32 + n as u64)?;
                    self.push(Value::Bytes(Rc::new(b.to_vec())))?;
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.charge(32 + n as u64)?;
                    self.push(Value::Bytes(Rc::new(b.to_vec())))?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.charge(64 + (module.len() + name.len()) as u64)?;
                    self.push(Value::Global(Rc::new((module, name))))?;
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => {
                            self.charge(64)?;
                            let g = (m.as_str().to_string(), n.as_str().to_string());
                            self.push(Value::Global(Rc::new(g)))?;
                        }
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
                    let t = self.node(items)?;
                    self.push(Value::Tuple(t))?;
                }
                0x85 => {
                    let a = self.pop()?;
                    let t = self.node(vec![a])?;
                    self.push(Value::Tuple(t))?;
                }
                0x86 => {
                    let b = self.pop()?;
                    let a = self.pop()?;
                    let t = self.node(vec![a, b])?;
                    self.push(Value::Tuple(t))?;
                }
                0x87 => {
                    let c = self.pop()?;
                    let b = self.pop()?;
                    let a = self.pop()?;
                    let t = self.node(vec![a, b, c])?;
                    self.push(Value::Tuple(t))?;
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
                    let p = self.node(vec![pid])?;
                    self.push(Value::PersId(p))?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.push(v)?;
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args), kept as data.
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.reduce(cls, args)?;
                    self.push(v)?;
                }
                b'b' => {
                    // BUILD: state for the object below; a state dict's objects
                    // (OrderedDict, tensors) take an empty state, which is dropped.
                    self.pop()?;
                    self.top()?;
                }
                other => return self.err(format!("unsupported opcode 0x{other:02x}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{'a': (1, -2, 'x')}` as Python writes it at protocol 2.
    const SMALL: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01J\xfe\xff\xff\xffX\x01\x00\x00\x00xq\x02\x87q\x03s.";

    #[test]
    fn small_pickles() {
        let Value::Dict(d) = Pickle::load(SMALL).unwrap() else {
            panic!("not a dict");
        };
        let items = d.items();
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[0], Value::Str(s) if &**s == "a"));
        let Value::Tuple(t) = &items[1] else {
            panic!("not a tuple");
        };
        let t = t.items();
        assert!(matches!(t[0], Value::Int(1)));
        assert!(matches!(t[1], Value::Int(-2)));
        assert!(matches!(&t[2], Value::Str(s) if &**s == "x"));
        // Every prefix is an error, not a panic.
        for n in 0..SMALL.len() {
            assert!(Pickle::load(&SMALL[..n]).is_err(), "prefix {n}");
        }
        // An opcode outside the subset.
        assert!(Pickle::load(b"\x80\x02I1\n.").is_err());
        // A memo read that was never written.
        assert!(Pickle::load(b"\x80\x02h\x05.").is_err());
    }

    #[test]
    fn a_memo_read_shares_the_container() {
        // l = []; memo 0; push memo 0; append 7 to the top; (l, memo 0): both
        // items are the one list, which holds the 7.
        let Value::Tuple(t) = Pickle::load(b"\x80\x02]q\x00h\x00K\x07a\x86.").unwrap() else {
            panic!("not a tuple");
        };
        let pair = t.items();
        for v in &pair {
            let Value::List(l) = v else {
                panic!("not a list");
            };
            assert_eq!(l.len(), 1, "both references see the append");
        }
    }

    #[test]
    fn marks_fence_the_stack() {
        // A pop across a mark is an underflow, as in CPython.
        assert!(Pickle::load(b"\x80\x02K\x01(\x85.").is_err());
        // `t` with no open mark.
        assert!(Pickle::load(b"\x80\x02K\x01t.").is_err());
    }
}

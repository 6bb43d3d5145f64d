//! DWARF types of global variables, reduced to the value types a scenario
//! can read and write as one number, and their byte encoding.

use std::collections::HashMap;
use std::fmt;

use gimli::{AttributeValue, UnitOffset, constants as dw};

use gimli::Reader as _;

use super::{ElfError, Reader};

/// How the bytes of a scalar global decode. Sizes are in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A two's complement (`signed`) or unsigned integer of 1, 2, 4 or 8 bytes.
    Int {
        /// Size in bytes.
        size: u8,
        /// Whether it is two's complement.
        signed: bool,
    },
    /// An IEEE 754 binary32 (4 bytes) or binary64 (8 bytes).
    Float {
        /// Size in bytes.
        size: u8,
    },
    /// A one-byte boolean (C `_Bool`): 0 or 1.
    Bool,
    /// A data or function pointer, read as an unsigned address.
    Pointer {
        /// Size in bytes.
        size: u8,
    },
    /// An enumeration, read as its underlying integer.
    Enum {
        /// Size in bytes (1 with arm-none-eabi's default `-fshort-enums`).
        size: u8,
        /// Whether the underlying integer is signed.
        signed: bool,
    },
}

impl ValueType {
    /// The size in bytes.
    pub fn size(&self) -> usize {
        match *self {
            ValueType::Int { size, .. }
            | ValueType::Float { size }
            | ValueType::Pointer { size }
            | ValueType::Enum { size, .. } => usize::from(size),
            ValueType::Bool => 1,
        }
    }

    /// Decodes the first [`size`](Self::size) bytes of `bytes` (missing bytes
    /// read as 0). Integers beyond 2^53 lose precision in the `f64`; a bool
    /// is 1.0 for any non-zero byte. A type of no size reads as 0, a float
    /// of neither 4 nor 8 bytes as NaN, and integers use at most 8 bytes.
    pub fn decode(&self, bytes: &[u8], little_endian: bool) -> f64 {
        let size = self.size().min(8);
        if size == 0 {
            return 0.0;
        }
        let mut raw: u64 = 0;
        for i in 0..size {
            let byte = u64::from(bytes.get(i).copied().unwrap_or(0));
            if little_endian {
                raw |= byte << (8 * i);
            } else {
                raw = (raw << 8) | byte;
            }
        }
        match *self {
            ValueType::Int { signed: true, .. } | ValueType::Enum { signed: true, .. } => {
                let shift = 64 - 8 * size as u32;
                (((raw << shift) as i64) >> shift) as f64
            }
            ValueType::Int { .. } | ValueType::Enum { .. } | ValueType::Pointer { .. } => {
                raw as f64
            }
            ValueType::Float { size: 4 } => f64::from(f32::from_bits(raw as u32)),
            ValueType::Float { size: 8 } => f64::from_bits(raw),
            ValueType::Float { .. } => f64::NAN,
            ValueType::Bool => f64::from(u8::from(raw != 0)),
        }
    }

    /// Encodes `value` into [`size`](Self::size) bytes. Integers, enums,
    /// pointers and bools must be whole numbers within their range; a 4-byte
    /// float must be within `f32` range (rounding is allowed; NaN and
    /// infinities are written as such).
    pub fn encode(&self, value: f64, little_endian: bool) -> Result<Vec<u8>, ElfError> {
        let size = self.size();
        let valid = match *self {
            ValueType::Float { size } => matches!(size, 4 | 8),
            _ => (1..=8).contains(&size),
        };
        if !valid {
            return Err(ElfError::InvalidType { ty: *self });
        }
        let raw = match *self {
            ValueType::Float { size: 4 } => {
                if value.is_finite() && value.abs() > f64::from(f32::MAX) {
                    return Err(self.out_of_range(
                        value,
                        f32::MIN.to_string(),
                        f32::MAX.to_string(),
                    ));
                }
                u64::from((value as f32).to_bits())
            }
            ValueType::Float { .. } => value.to_bits(),
            ValueType::Int { signed, .. } | ValueType::Enum { signed, .. } => {
                self.integer(value, signed)?
            }
            ValueType::Pointer { .. } | ValueType::Bool => self.integer(value, false)?,
        };
        let bytes = if little_endian {
            raw.to_le_bytes()[..size].to_vec()
        } else {
            raw.to_be_bytes()[8 - size..].to_vec()
        };
        Ok(bytes)
    }

    /// The bits of a whole `value` within the range of this integer type.
    fn integer(&self, value: f64, signed: bool) -> Result<u64, ElfError> {
        if value.is_nan() || value.fract() != 0.0 {
            return Err(ElfError::NotIntegral { value, ty: *self });
        }
        let bits = if *self == ValueType::Bool {
            1
        } else {
            8 * self.size() as i32
        };
        // Powers of two are exact in f64, so these bounds are exact too.
        let (low, high) = if signed {
            (-(2f64.powi(bits - 1)), 2f64.powi(bits - 1))
        } else {
            (0.0, 2f64.powi(bits))
        };
        if value < low || value >= high {
            let (min, max) = if signed {
                let half = 1i128 << (bits - 1);
                (-half, half - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            return Err(self.out_of_range(value, min.to_string(), max.to_string()));
        }
        Ok(if signed {
            value as i64 as u64
        } else {
            value as u64
        })
    }

    fn out_of_range(&self, value: f64, min: String, max: String) -> ElfError {
        ElfError::OutOfRange {
            value,
            ty: *self,
            min,
            max,
        }
    }
}

impl fmt::Display for ValueType {
    /// `u8`, `i32`, `f64`, `bool`, `pointer (u32)`, `enum (i8)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = |signed: bool, size: u8| {
            format!("{}{}", if signed { 'i' } else { 'u' }, 8 * u32::from(size))
        };
        match *self {
            ValueType::Int { size, signed } => write!(f, "{}", int(signed, size)),
            ValueType::Float { size } => write!(f, "f{}", 8 * u32::from(size)),
            ValueType::Bool => write!(f, "bool"),
            ValueType::Pointer { size } => write!(f, "pointer ({})", int(false, size)),
            ValueType::Enum { size, signed } => write!(f, "enum ({})", int(signed, size)),
        }
    }
}

/// A global variable as DWARF describes it.
pub(crate) struct DwarfGlobal {
    /// Its static address, if its location is one (`DW_OP_addr`).
    pub(crate) address: Option<u64>,
    /// Its type, reduced.
    pub(crate) ty: GlobalType,
}

/// A variable's type: one readable value, or why not.
#[derive(Debug, Clone)]
pub(crate) enum GlobalType {
    /// A scalar.
    Value(ValueType),
    /// A struct, union, class or array.
    Aggregate {
        /// `a struct`, `a union`, `a class`, `an array`.
        kind: String,
        /// Size in bytes.
        size: u64,
    },
    /// Anything else (`void`, function types, 16-byte floats, ...).
    Unsupported(String),
}

/// How many typedefs and qualifiers to follow before giving up (cycles).
const MAX_TYPE_DEPTH: usize = 32;

/// Reads the file-scope variables (children of the compilation units) of all units.
pub(crate) fn read_globals(
    dwarf: &gimli::Dwarf<Reader>,
) -> gimli::Result<HashMap<String, DwarfGlobal>> {
    let mut globals: HashMap<String, DwarfGlobal> = HashMap::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let mut entries = unit.entries();
        while let Some(die) = entries.next_dfs()? {
            if die.depth() != 1 || die.tag() != dw::DW_TAG_variable {
                continue;
            }
            let address = location_address(dwarf, &unit, die.attr_value(dw::DW_AT_location))?;
            // A definition may only point at its declaration for name and type.
            let described = match die.attr_value(dw::DW_AT_specification) {
                Some(AttributeValue::UnitRef(spec)) => unit.entry(spec)?,
                _ => die.clone(),
            };
            let Some(name) = described.attr_value(dw::DW_AT_name) else {
                continue;
            };
            let name = dwarf
                .attr_string(&unit, name)?
                .to_string_lossy()?
                .into_owned();
            if globals.get(&name).is_some_and(|g| g.address.is_some()) {
                continue;
            }
            let ty = match described.attr_value(dw::DW_AT_type) {
                Some(AttributeValue::UnitRef(offset)) => resolve(&unit, offset, 0)?,
                Some(_) => GlobalType::Unsupported("a type in another unit".into()),
                None => GlobalType::Unsupported("no type".into()),
            };
            globals.insert(name, DwarfGlobal { address, ty });
        }
    }
    Ok(globals)
}

/// The address of a location that is exactly one `DW_OP_addr`/`DW_OP_addrx`.
fn location_address(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
    location: Option<AttributeValue<Reader>>,
) -> gimli::Result<Option<u64>> {
    let Some(AttributeValue::Exprloc(expr)) = location else {
        return Ok(None);
    };
    let mut ops = expr.operations(unit.encoding());
    let address = match ops.next()? {
        Some(gimli::Operation::Address { address }) => address,
        Some(gimli::Operation::AddressIndex { index }) => dwarf.address(unit, index)?,
        _ => return Ok(None),
    };
    // More operations compute something else (a TLS offset, a piece, ...).
    Ok(ops.next()?.is_none().then_some(address))
}

/// Reduces the type at `offset`: through typedefs and qualifiers to a base
/// type, pointer, enum or aggregate.
/// `depth` counts the types followed so far, against cycles in malformed DWARF.
fn resolve(
    unit: &gimli::Unit<Reader>,
    mut offset: UnitOffset,
    mut depth: usize,
) -> gimli::Result<GlobalType> {
    while depth < MAX_TYPE_DEPTH {
        depth += 1;
        let die = unit.entry(offset)?;
        let byte_size = die
            .attr_value(dw::DW_AT_byte_size)
            .and_then(|v| v.udata_value());
        let tag = die.tag();
        let ty = match tag {
            dw::DW_TAG_typedef
            | dw::DW_TAG_const_type
            | dw::DW_TAG_volatile_type
            | dw::DW_TAG_restrict_type
            | dw::DW_TAG_atomic_type
            | dw::DW_TAG_immutable_type => match die.attr_value(dw::DW_AT_type) {
                Some(AttributeValue::UnitRef(next)) => {
                    offset = next;
                    continue;
                }
                _ => GlobalType::Unsupported("void".into()),
            },
            dw::DW_TAG_base_type => base_type(&die, byte_size),
            dw::DW_TAG_pointer_type
            | dw::DW_TAG_reference_type
            | dw::DW_TAG_rvalue_reference_type => {
                let size = byte_size.unwrap_or(u64::from(unit.encoding().address_size));
                match u8::try_from(size) {
                    Ok(size @ (1 | 2 | 4 | 8)) => GlobalType::Value(ValueType::Pointer { size }),
                    _ => GlobalType::Unsupported(format!("a {size}-byte pointer")),
                }
            }
            dw::DW_TAG_enumeration_type => enum_type(unit, &die, byte_size, depth)?,
            dw::DW_TAG_structure_type => aggregate("a struct", byte_size),
            dw::DW_TAG_union_type => aggregate("a union", byte_size),
            dw::DW_TAG_class_type => aggregate("a class", byte_size),
            dw::DW_TAG_array_type => aggregate("an array", array_size(unit, &die, depth)?),
            dw::DW_TAG_subroutine_type => GlobalType::Unsupported("a function type".into()),
            other => GlobalType::Unsupported(format!("{other}")),
        };
        return Ok(ty);
    }
    Ok(GlobalType::Unsupported("a type nested too deeply".into()))
}

fn aggregate(kind: &str, size: Option<u64>) -> GlobalType {
    GlobalType::Aggregate {
        kind: kind.into(),
        size: size.unwrap_or(0),
    }
}

/// A `DW_TAG_base_type`, by its `DW_AT_encoding`.
fn base_type(die: &gimli::DebuggingInformationEntry<Reader>, byte_size: Option<u64>) -> GlobalType {
    let Some(AttributeValue::Encoding(encoding)) = die.attr_value(dw::DW_AT_encoding) else {
        return GlobalType::Unsupported("a base type without encoding".into());
    };
    let size = byte_size.unwrap_or(0);
    let Ok(size @ (1 | 2 | 4 | 8)) = u8::try_from(size) else {
        return GlobalType::Unsupported(format!("a {size}-byte {encoding}"));
    };
    match encoding {
        dw::DW_ATE_signed | dw::DW_ATE_signed_char => {
            GlobalType::Value(ValueType::Int { size, signed: true })
        }
        dw::DW_ATE_unsigned | dw::DW_ATE_unsigned_char | dw::DW_ATE_UTF => {
            GlobalType::Value(ValueType::Int {
                size,
                signed: false,
            })
        }
        dw::DW_ATE_boolean if size == 1 => GlobalType::Value(ValueType::Bool),
        dw::DW_ATE_boolean => GlobalType::Value(ValueType::Int {
            size,
            signed: false,
        }),
        dw::DW_ATE_float if size >= 4 => GlobalType::Value(ValueType::Float { size }),
        other => GlobalType::Unsupported(format!("a {size}-byte {other}")),
    }
}

/// An enum: signed by its own `DW_AT_encoding` (gcc emits it), else by its
/// underlying `DW_AT_type`, else unsigned.
fn enum_type(
    unit: &gimli::Unit<Reader>,
    die: &gimli::DebuggingInformationEntry<Reader>,
    byte_size: Option<u64>,
    depth: usize,
) -> gimli::Result<GlobalType> {
    let mut signed = false;
    if let Some(AttributeValue::Encoding(encoding)) = die.attr_value(dw::DW_AT_encoding) {
        signed = matches!(encoding, dw::DW_ATE_signed | dw::DW_ATE_signed_char);
    } else if let Some(AttributeValue::UnitRef(base)) = die.attr_value(dw::DW_AT_type) {
        signed = matches!(
            resolve(unit, base, depth)?,
            GlobalType::Value(ValueType::Int { signed: true, .. })
        );
    }
    let size = byte_size.unwrap_or(0);
    Ok(match u8::try_from(size) {
        Ok(size @ (1 | 2 | 4 | 8)) => GlobalType::Value(ValueType::Enum { size, signed }),
        _ => GlobalType::Unsupported(format!("a {size}-byte enum")),
    })
}

/// An array's size: its `DW_AT_byte_size`, else element size times the
/// counts of its subranges (`None` when a bound is unknown). `depth`
/// counts the types followed so far, against cycles in malformed DWARF.
fn array_size(
    unit: &gimli::Unit<Reader>,
    die: &gimli::DebuggingInformationEntry<Reader>,
    depth: usize,
) -> gimli::Result<Option<u64>> {
    if let Some(size) = die
        .attr_value(dw::DW_AT_byte_size)
        .and_then(|v| v.udata_value())
    {
        return Ok(Some(size));
    }
    let Some(AttributeValue::UnitRef(element)) = die.attr_value(dw::DW_AT_type) else {
        return Ok(None);
    };
    let Some(mut size) = type_size(unit, element, depth + 1)? else {
        return Ok(None);
    };
    let mut tree = unit.entries_tree(Some(die.offset()))?;
    let mut children = tree.root()?.children();
    while let Some(child) = children.next()? {
        let sub = child.entry();
        if sub.tag() != dw::DW_TAG_subrange_type {
            continue;
        }
        let count = match sub
            .attr_value(dw::DW_AT_count)
            .and_then(|v| v.udata_value())
        {
            Some(count) => count,
            None => {
                let lower = sub
                    .attr_value(dw::DW_AT_lower_bound)
                    .and_then(|v| v.udata_value())
                    .unwrap_or(0);
                let Some(upper) = sub
                    .attr_value(dw::DW_AT_upper_bound)
                    .and_then(|v| v.udata_value())
                else {
                    return Ok(None);
                };
                (upper + 1).saturating_sub(lower)
            }
        };
        size = size.saturating_mul(count);
    }
    Ok(Some(size))
}

/// The size of any type: `DW_AT_byte_size`, through typedefs and qualifiers.
fn type_size(
    unit: &gimli::Unit<Reader>,
    mut offset: UnitOffset,
    mut depth: usize,
) -> gimli::Result<Option<u64>> {
    while depth < MAX_TYPE_DEPTH {
        depth += 1;
        let die = unit.entry(offset)?;
        if let Some(size) = die
            .attr_value(dw::DW_AT_byte_size)
            .and_then(|v| v.udata_value())
        {
            return Ok(Some(size));
        }
        match die.tag() {
            dw::DW_TAG_pointer_type => return Ok(Some(u64::from(unit.encoding().address_size))),
            dw::DW_TAG_array_type => return array_size(unit, &die, depth),
            _ => {}
        }
        let Some(AttributeValue::UnitRef(next)) = die.attr_value(dw::DW_AT_type) else {
            return Ok(None);
        };
        offset = next;
    }
    Ok(None)
}

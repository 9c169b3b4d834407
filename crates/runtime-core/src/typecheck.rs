//! Dynamic arguments checked against an export's parameter types before any
//! guest code runs: a mismatch is the caller's mistake, reported as
//! `invalid-arguments`, and never reaches (or poisons) the instance.

use wasmtime::component::{Type, Val};

/// Checks `args` against `params` (name and type of each parameter); the
/// error names the first parameter that does not match and both types.
pub(crate) fn check_arguments<'a, T: std::borrow::Borrow<Type>>(
    params: impl ExactSizeIterator<Item = (&'a str, T)>,
    args: &[Val],
) -> Result<(), String> {
    if params.len() != args.len() {
        return Err(format!("expected {} argument(s), got {}", params.len(), args.len()));
    }
    for ((name, ty), arg) in params.zip(args) {
        let ty = ty.borrow();
        check_value(ty, arg)
            .map_err(|mismatch| format!("parameter `{name}` is {}, but the argument is {mismatch}", type_name(ty)))?;
    }
    Ok(())
}

/// `Ok` when `value` has type `ty`; else what the value is (at the first
/// place it differs, inside records and lists too).
fn check_value(ty: &Type, value: &Val) -> Result<(), String> {
    let matches = match (ty, value) {
        (Type::Bool, Val::Bool(_))
        | (Type::S8, Val::S8(_))
        | (Type::U8, Val::U8(_))
        | (Type::S16, Val::S16(_))
        | (Type::U16, Val::U16(_))
        | (Type::S32, Val::S32(_))
        | (Type::U32, Val::U32(_))
        | (Type::S64, Val::S64(_))
        | (Type::U64, Val::U64(_))
        | (Type::Float32, Val::Float32(_))
        | (Type::Float64, Val::Float64(_))
        | (Type::Char, Val::Char(_))
        | (Type::String, Val::String(_))
        // wasmtime checks a handle's resource type itself, without trapping.
        | (Type::Own(_) | Type::Borrow(_), Val::Resource(_)) => true,
        (Type::List(list), Val::List(items)) => {
            let item = list.ty();
            return items.iter().try_for_each(|value| check_value(&item, value));
        }
        (Type::Tuple(tuple), Val::Tuple(items)) if tuple.types().len() == items.len() => {
            return tuple.types().zip(items).try_for_each(|(ty, value)| check_value(&ty, value));
        }
        (Type::Record(record), Val::Record(fields)) if record.fields().len() == fields.len() => {
            for (field, (name, value)) in record.fields().zip(fields) {
                if field.name != name {
                    return Err(format!("a record whose field `{name}` should be `{}`", field.name));
                }
                check_value(&field.ty, value)?;
            }
            return Ok(());
        }
        (Type::Variant(variant), Val::Variant(name, payload)) => {
            let case = variant.cases().find(|case| case.name == name);
            return match (case.map(|case| case.ty), payload) {
                (None, _) => Err(format!("the variant case `{name}`, which the type has not")),
                (Some(Some(ty)), Some(payload)) => check_value(&ty, payload),
                (Some(None), None) => Ok(()),
                (Some(_), _) => Err(format!("the variant case `{name}` with a payload that does not match")),
            };
        }
        (Type::Enum(names), Val::Enum(name)) => names.names().any(|case| case == name),
        (Type::Flags(names), Val::Flags(set)) => set.iter().all(|flag| names.names().any(|name| name == flag)),
        (Type::Option(option), Val::Option(value)) => {
            return value.as_deref().map_or(Ok(()), |value| check_value(&option.ty(), value));
        }
        (Type::Result(result), Val::Result(value)) => {
            let (ty, payload) = match value {
                Ok(payload) => (result.ok(), payload),
                Err(payload) => (result.err(), payload),
            };
            return match (ty, payload) {
                (Some(ty), Some(payload)) => check_value(&ty, payload),
                (None, None) => Ok(()),
                _ => Err("a result whose payload does not match".to_owned()),
            };
        }
        // Maps, fixed-length lists, futures, streams and error contexts are
        // checked by wasmtime as it lowers them.
        (Type::Map(_), Val::Map(_))
        | (Type::FixedLengthList(_), Val::FixedLengthList(_))
        | (Type::Future(_), Val::Future(_))
        | (Type::Stream(_), Val::Stream(_))
        | (Type::ErrorContext, Val::ErrorContext(_)) => true,
        _ => false,
    };
    if matches { Ok(()) } else { Err(value_name(value).to_owned()) }
}

/// A WIT spelling of `ty`, one level deep.
pub(crate) fn type_name(ty: &Type) -> String {
    match ty {
        Type::List(list) => format!("list<{}>", type_name(&list.ty())),
        Type::Option(option) => format!("option<{}>", type_name(&option.ty())),
        Type::Tuple(tuple) => {
            format!("tuple<{}>", tuple.types().map(|ty| type_name(&ty)).collect::<Vec<_>>().join(", "))
        }
        Type::Result(_) => "a result".to_owned(),
        Type::Record(_) => "a record".to_owned(),
        Type::Variant(_) => "a variant".to_owned(),
        Type::Enum(_) => "an enum".to_owned(),
        Type::Flags(_) => "flags".to_owned(),
        Type::Own(_) => "an owned resource handle".to_owned(),
        Type::Borrow(_) => "a borrowed resource handle".to_owned(),
        other => value_type_name(other).to_owned(),
    }
}

fn value_type_name(ty: &Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::Map(_) => "a map",
        Type::FixedLengthList(_) => "a fixed-length list",
        Type::Future(_) => "a future",
        Type::Stream(_) => "a stream",
        Type::ErrorContext => "an error context",
        _ => "a compound type",
    }
}

fn value_name(value: &Val) -> &'static str {
    match value {
        Val::Bool(_) => "a bool",
        Val::S8(_) => "an s8",
        Val::U8(_) => "a u8",
        Val::S16(_) => "an s16",
        Val::U16(_) => "a u16",
        Val::S32(_) => "an s32",
        Val::U32(_) => "a u32",
        Val::S64(_) => "an s64",
        Val::U64(_) => "a u64",
        Val::Float32(_) => "an f32",
        Val::Float64(_) => "an f64",
        Val::Char(_) => "a char",
        Val::String(_) => "a string",
        Val::List(_) => "a list",
        Val::Map(_) => "a map",
        Val::Record(_) => "a record",
        Val::Tuple(_) => "a tuple",
        Val::Variant(..) => "a variant",
        Val::Enum(_) => "an enum case",
        Val::Option(_) => "an option",
        Val::Result(_) => "a result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "a resource handle",
        Val::Future(_) => "a future",
        Val::Stream(_) => "a stream",
        Val::ErrorContext(_) => "an error context",
        Val::FixedLengthList(_) => "a fixed-length list",
    }
}

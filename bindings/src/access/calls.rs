//! The accesses of a call: builtins that act on their arguments (`len`,
//! `sorted`, `sum`, ...) and methods of builtin containers (`append`,
//! `pop`, `keys`, ...).

use super::collector::Collector;
use super::record::Seed;
use super::tables::{container_of, item_slot, str_of, type_of, Builtin, Container};
use crate::codeinfo::OpKind;
use pyo3::ffi;
use std::ffi::CStr;
use std::os::raw::c_char;

impl Collector<'_> {
    /// Accesses made by calling `callable` with `args` (positional first).
    pub(super) fn call(&mut self, callable: *mut ffi::PyObject, args: &[*mut ffi::PyObject]) {
        let tb = self.tb;
        if callable.is_null() {
            return;
        }
        let t = type_of(callable);
        if t == tb.function || t == tb.method {
            return;
        }
        let c = callable as usize;
        if let Some(&(_, b)) = tb.builtins.iter().find(|(p, _)| *p == c) {
            self.builtin(b, args);
            return;
        }
        unsafe {
            if t == tb.cfunction || ffi::PyCFunction_Check(callable) != 0 {
                let f = callable as *mut ffi::PyCFunctionObject;
                let this = (*f).m_self;
                let ml = (*f).m_ml;
                if this.is_null() || ml.is_null() || (*ml).ml_name.is_null() {
                    return;
                }
                let name = CStr::from_ptr((*ml).ml_name as *const c_char)
                    .to_str()
                    .unwrap_or("");
                self.method(this, name, args);
            } else if t == tb.method_descriptor || t == tb.wrapper_descriptor {
                // PyDescrObject: { HEAD; PyTypeObject *d_type; PyObject *d_name; ... }
                let head = std::mem::size_of::<ffi::PyObject>();
                let d_type = *((callable as *mut u8).add(head) as *mut usize);
                let d_name = *((callable as *mut u8).add(head + 8) as *mut *mut ffi::PyObject);
                let Some(name) = str_of(d_name) else { return };
                let Some((&this, rest)) = args.split_first() else {
                    return;
                };
                if d_type == std::ptr::addr_of_mut!(ffi::PyBaseObject_Type) as usize {
                    let attr = rest.first().copied().unwrap_or(std::ptr::null_mut());
                    match name {
                        "__setattr__" | "__delattr__" => self.attr(this, attr, true),
                        "__getattribute__" => self.attr(this, attr, false),
                        _ => {}
                    }
                    return;
                }
                self.method(this, name, rest);
            } else if t == tb.method_wrapper {
                // wrapperobject: { HEAD; PyWrapperDescrObject *descr; PyObject *self; }
                let head = std::mem::size_of::<ffi::PyObject>();
                let descr = *((callable as *mut u8).add(head) as *mut *mut ffi::PyObject);
                let this = *((callable as *mut u8).add(head + 8) as *mut *mut ffi::PyObject);
                if descr.is_null() || this.is_null() {
                    return;
                }
                let d_name = *((descr as *mut u8).add(head + 8) as *mut *mut ffi::PyObject);
                let Some(name) = str_of(d_name) else { return };
                if name == "__setattr__" || name == "__delattr__" {
                    self.attr(
                        this,
                        args.first().copied().unwrap_or(std::ptr::null_mut()),
                        true,
                    );
                    return;
                }
                self.method(this, name, args);
            }
        }
    }

    pub(super) fn builtin(&mut self, b: Builtin, args: &[*mut ffi::PyObject]) {
        let arg = |i: usize| args.get(i).copied().unwrap_or(std::ptr::null_mut());
        match b {
            Builtin::SetAttr | Builtin::DelAttr => self.attr(arg(0), arg(1), true),
            Builtin::GetAttr | Builtin::HasAttr => self.attr(arg(0), arg(1), false),
            Builtin::Len => {
                let c = arg(0);
                if !c.is_null() && container_of(self.tb, c) != Container::Untracked {
                    self.shape(c, false);
                }
            }
            Builtin::ReadsArgsFrom(first) => {
                for &a in args.iter().skip(first) {
                    if !a.is_null() {
                        self.whole_read(a);
                    }
                }
            }
            Builtin::Next => {
                if !arg(0).is_null() {
                    self.iter_next(arg(0));
                }
            }
            Builtin::Iter => {
                if !arg(0).is_null() {
                    self.get_iter(arg(0));
                }
            }
            Builtin::Vars => {}
            Builtin::GetItem => self.subscr(arg(0), arg(1), OpKind::SubscrRead),
            Builtin::SetItem => self.subscr(arg(0), arg(1), OpKind::SubscrWrite),
            Builtin::DelItem => self.subscr(arg(0), arg(1), OpKind::SubscrDelete),
        }
    }

    /// A C method `name` of `this`, classified by name.
    pub(super) fn method(
        &mut self,
        this: *mut ffi::PyObject,
        name: &str,
        args: &[*mut ffi::PyObject],
    ) {
        let arg0 = args.first().copied().unwrap_or(std::ptr::null_mut());
        let t = type_of(this);
        if t != self.tb.list && self.tb.immutable.contains(&t) {
            // str.join / bytes.join iterate their argument.
            if name == "join" && !arg0.is_null() {
                self.whole_read(arg0);
            }
            return;
        }
        match container_of(self.tb, this) {
            Container::Untracked => {}
            Container::Set => {
                let reads = matches!(
                    name,
                    "__contains__"
                        | "issubset"
                        | "issuperset"
                        | "isdisjoint"
                        | "union"
                        | "intersection"
                        | "difference"
                        | "symmetric_difference"
                        | "copy"
                        | "__len__"
                        | "__iter__"
                        | "__copy__"
                        | "__reduce__"
                        | "__sizeof__"
                );
                self.shape(this, !reads);
            }
            Container::Dict => match name {
                "get" | "__getitem__" | "__contains__" => self.contains(this, arg0),
                "keys" | "__len__" | "__iter__" | "__reversed__" | "__sizeof__" => {
                    self.shape(this, false)
                }
                "values" | "items" | "copy" | "__copy__" | "__reduce__" | "__repr__" => {
                    self.whole_read(this)
                }
                "__setitem__" => self.subscr(this, arg0, OpKind::SubscrWrite),
                "pop" | "setdefault" | "__delitem__" => {
                    if !arg0.is_null() {
                        if let Some(slot) = item_slot(self.tb, arg0) {
                            self.push(this, slot, Seed::Item(arg0), true);
                        }
                    }
                    self.shape(this, true);
                }
                _ => self.shape(this, true),
            },
            Container::List | Container::Other => match name {
                "__getitem__" => self.subscr(this, arg0, OpKind::SubscrRead),
                "__setitem__" => self.subscr(this, arg0, OpKind::SubscrWrite),
                "__len__" | "__sizeof__" => self.shape(this, false),
                "count" | "index" | "copy" | "__copy__" | "__contains__" | "__iter__"
                | "__reversed__" | "__reduce__" | "__reduce_ex__" | "__repr__" | "__eq__"
                | "__ne__" | "__lt__" | "__le__" | "__gt__" | "__ge__" | "tolist" | "tobytes"
                | "tounicode" | "hex" => self.whole_read(this),
                _ => self.shape(this, true),
            },
        }
    }
}

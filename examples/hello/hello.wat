;; The smallest useful component: `hello() -> string` and `add(a, b) -> u32`.
;; Strings are lifted from the component's own memory, where a data segment
;; holds "hello, world!" and a (pointer, length) pair at address 8 points to it.
(component
  (core module $m
    (memory (export "memory") 1)
    (data (i32.const 8) "\10\00\00\00\0d\00\00\00")
    (data (i32.const 16) "hello, world!")
    (func (export "hello") (result i32) (i32.const 8))
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
  (core instance $i (instantiate $m))
  (func (export "hello") (result string) (canon lift (core func $i "hello") (memory (core memory $i "memory"))))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add"))))

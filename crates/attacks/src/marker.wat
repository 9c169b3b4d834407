;; plant(how): grows memory to 16 pages and the table to 100 entries, fills
;; both with a marker, then returns (0), traps (1) or spins (2).
;; scan(): how many 8-byte words of memory and table entries are not what a
;; fresh instance has (zero, null), plus 1,000,000 if memory is not 1 page.
(component
  (core module $m
    (memory 1 16)
    (table 10 100 funcref)
    (func $marker)
    (elem declare func $marker)
    (func (export "plant") (param $how i32)
      (drop (memory.grow (i32.sub (i32.const 16) (memory.size))))
      (memory.fill (i32.const 0) (i32.const 0xA5) (i32.mul (memory.size) (i32.const 65536)))
      (drop (table.grow (ref.func $marker) (i32.sub (i32.const 100) (table.size))))
      (table.fill (i32.const 0) (ref.func $marker) (table.size))
      (if (i32.eq (local.get $how) (i32.const 1)) (then unreachable))
      (if (i32.eq (local.get $how) (i32.const 2)) (then (loop $spin (br $spin)))))
    (func (export "scan") (result i32) (local $i i32) (local $found i32) (local $end i32)
      (local.set $end (i32.mul (memory.size) (i32.const 65536)))
      (block $done (loop $words
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (if (i64.ne (i64.load (local.get $i)) (i64.const 0))
          (then (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
      (local.set $i (i32.const 0))
      (block $done (loop $entries
        (br_if $done (i32.ge_u (local.get $i) (table.size)))
        (if (i32.eqz (ref.is_null (table.get (local.get $i))))
          (then (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $entries)))
      (i32.add (local.get $found) (i32.mul (i32.ne (memory.size) (i32.const 1)) (i32.const 1000000)))))
  (core instance $i (instantiate $m))
  (func (export "plant") (param "how" u32) (canon lift (core func $i "plant")))
  (func (export "scan") (result u32) (canon lift (core func $i "scan"))))

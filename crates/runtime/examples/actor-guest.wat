;; The actor example's guest: a running total in a global, kept between
;; calls of a live instance; `handle` forwards half of each amount to the
;; next actor through the host's `mailbox.send`.
(component
  (import "example:actor/mailbox" (instance $mailbox
    (export "send" (func (param "to" u32) (param "amount" u32) (result u32)))
    (export "self-id" (func (result u32)))))
  (core func $send (canon lower (func $mailbox "send")))
  (core func $self_id (canon lower (func $mailbox "self-id")))
  (core module $m
    (import "mailbox" "send" (func $send (param i32 i32) (result i32)))
    (import "mailbox" "self-id" (func $self_id (result i32)))
    (global $total (mut i64) (i64.const 0))
    (func (export "handle") (param $amount i32) (result i32)
      (global.set $total (i64.add (global.get $total) (i64.extend_i32_u (local.get $amount))))
      (if (i32.ge_u (local.get $amount) (i32.const 2))
        (then (drop (call $send
          (i32.rem_u (i32.add (call $self_id) (i32.const 1)) (i32.const 100))
          (i32.shr_u (local.get $amount) (i32.const 1))))))
      (i32.wrap_i64 (global.get $total)))
    (func (export "total") (result i64) (global.get $total))
    (func (export "spin") (loop $l (br $l)))
    (func (export "fail") unreachable))
  (core instance $i (instantiate $m (with "mailbox" (instance
    (export "send" (func $send)) (export "self-id" (func $self_id))))))
  (func (export "handle") (param "amount" u32) (result u32) (canon lift (core func $i "handle")))
  (func (export "total") (result u64) (canon lift (core func $i "total")))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "fail") (canon lift (core func $i "fail"))))

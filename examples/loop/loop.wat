;; A guest that never returns: `spin()` loops forever. Run it under any
;; limits and the call is stopped: out of fuel, or at its deadline,
;; whichever comes first.
(component
  (core module $m
    (func (export "spin") (loop $forever (br $forever))))
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin"))))

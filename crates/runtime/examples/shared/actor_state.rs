//! One actor's host state, shared by the actor example and the test that
//! runs the README's digest of it; the including module generates the
//! actor world with `bindgen!`.

/// One actor's host state: what its imports reach.
#[derive(Debug, Default)]
pub(crate) struct ActorState {
    pub(crate) id: u32,
    pub(crate) outbox: Vec<(u32, u32)>,
}

impl super::example::actor::mailbox::Host for ActorState {
    fn send(&mut self, to: u32, amount: u32) -> u32 {
        self.outbox.push((to, amount));
        self.outbox.len() as u32
    }

    fn self_id(&mut self) -> u32 {
        self.id
    }
}

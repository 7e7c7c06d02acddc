//! Engines that exchange real datagrams (encoded, authenticated and
//! decoded as the runtime does), for tests of what goes on the wire.

use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{Engine, Input, Op, Output, Params};
use harust::wire::{self, Keyed, Keyring, Message, Method};

use super::Spec;

pub struct Node {
    pub engine: Engine,
    pub keyed: Keyed,
    pub tx: Vec<u8>,
    pub scratch: Vec<u8>,
}

impl Node {
    pub fn new(spec: &Spec, me: usize) -> Node {
        let mut cfg = spec.config(me);
        cfg.keys = Keyring::single(Method::Sha1(b"alloc-budget-secret".to_vec()));
        let params = Params {
            uuid: [me as u8 + 1; 16],
            generation: 0x6b06_f981 + me as u64,
            wall_base: 0x6b06_f000,
            seed: me as u64,
        };
        let mut engine = Engine::new(&cfg, params, Duration::ZERO);
        engine.handle(Duration::ZERO, Input::Reconciled { present: vec![] });
        Node {
            engine,
            keyed: Keyed::new(&cfg.keys),
            tx: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// One step as the runtime takes it: every message sent is encoded into
    /// the kept buffer, and resource actions succeed at once. Returns the
    /// datagrams.
    pub fn step(&mut self, now: Duration, input: Input) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        let mut inputs = vec![input];
        while let Some(input) = inputs.pop() {
            for o in self.engine.handle(now, input) {
                match o {
                    Output::Send(m) => {
                        wire::encode_into(&m, &self.keyed, &mut self.tx, &mut self.scratch);
                        sent.push(self.tx.clone());
                    }
                    Output::Start { group, resource } | Output::Stop { group, resource } => {
                        let op = if matches!(o, Output::Start { .. }) {
                            Op::Start
                        } else {
                            Op::Stop
                        };
                        inputs.insert(
                            0,
                            Input::ResourceDone {
                                group,
                                resource,
                                op,
                                result: Ok(()),
                            },
                        );
                    }
                    _ => {}
                }
            }
        }
        sent
    }

    pub fn receive(&mut self, now: Duration, link: usize, bytes: &[u8]) -> Vec<Vec<u8>> {
        let msg: Message = wire::decode(bytes, &self.keyed).expect("authentic");
        self.step(now, Input::Packet { link, msg })
    }
}

/// Two nodes on two media, beating until both see each other up and A
/// holds its group.
pub fn settled_pair() -> (Node, Node, Duration, Duration) {
    let mut spec = Spec::two_node(AutoFailback::On);
    spec.groups = vec![(0, 2, 0)];
    let ka = spec.timings.keepalive;
    let mut a = Node::new(&spec, 0);
    let mut b = Node::new(&spec, 1);
    let mut now = Duration::ZERO;
    for _ in 0..200 {
        now += ka / 2;
        exchange(&mut a, &mut b, now);
        exchange(&mut b, &mut a, now);
    }
    let held = a.engine.view(now).groups[0].local_state;
    assert_eq!(held, "held", "A holds its group before measuring");
    (a, b, now, ka)
}

/// `from` takes a step; what it sends reaches `to` on both media, and the
/// answers come back.
pub fn exchange(from: &mut Node, to: &mut Node, now: Duration) {
    let mut to_peer = from.step(now, Input::Tick);
    for _ in 0..4 {
        let mut back = Vec::new();
        for pkt in to_peer.drain(..) {
            for link in [0, 1] {
                back.extend(to.receive(now, link, &pkt));
            }
        }
        for pkt in back {
            for link in [0, 1] {
                to_peer.extend(from.receive(now, link, &pkt));
            }
        }
    }
}

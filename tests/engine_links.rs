//! Link liveness with redundant media: every message arrives once per
//! medium, and each copy shows that its medium works, not only the copy
//! that happens to arrive first.

mod simnet;

use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{Engine, Event, Input, Output, Params};
use simnet::{MS, Spec};

fn engine(spec: &Spec, me: usize) -> Engine {
    let params = Params {
        uuid: [me as u8 + 1; 16],
        generation: 0x6b06_f980,
        wall_base: 0x6b06_f000,
        seed: me as u64,
    };
    let mut e = Engine::new(&spec.config(me), params, Duration::ZERO);
    e.handle(Duration::ZERO, Input::Reconciled { present: vec![] });
    e
}

fn link_ups(outputs: &[Output]) -> Vec<usize> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::LinkUp { link, .. }) => Some(*link),
            _ => None,
        })
        .collect()
}

#[test]
fn every_medium_a_message_arrives_on_is_up_not_only_the_first() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut a = engine(&spec, 0);
    let mut b = engine(&spec, 1);
    let mut ups = Vec::new();
    let mut t = Duration::ZERO;
    // A few of B's beats, each delivered on link 0 first, then link 1.
    for _ in 0..3 {
        t += spec.timings.keepalive;
        for o in b.handle(t, Input::Tick) {
            if let Output::Send(msg) = o {
                for link in [0, 1] {
                    let out = a.handle(
                        t + MS,
                        Input::Packet {
                            link,
                            msg: (*msg).clone(),
                        },
                    );
                    ups.extend(link_ups(&out));
                }
            }
        }
    }
    assert_eq!(ups, vec![0, 1], "link 0 then link 1 come up, once each");
    let links = &a.view(t).nodes[1].links;
    assert_eq!(links, &vec![(0, true), (1, true)]);
}

use super::*;

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

#[test]
fn the_readme_lists_every_binding() {
    let readme = include_str!("../../../../README.md");
    let table = markdown_table();
    assert!(
        readme.contains(&table),
        "README's key table is out of date; it should read:\n{table}"
    );
}

#[test]
fn no_key_is_bound_twice_where_modes_are_layered() {
    for (i, a) in BINDINGS.iter().enumerate() {
        for b in &BINDINGS[i + 1..] {
            let clash = Mode::ALL
                .iter()
                .any(|m| layers(*m).contains(&a.mode) && layers(*m).contains(&b.mode));
            if clash {
                for k in a.keys {
                    assert!(
                        !b.keys.contains(k),
                        "{k:?} bound twice: {:?} in {:?} and {:?} in {:?}",
                        a.action,
                        a.mode,
                        b.action,
                        b.mode
                    );
                }
            }
        }
    }
}

#[test]
fn keys_that_hurt_are_not_live_where_text_is_typed() {
    for mode in [Mode::QueryPane, Mode::Edit, Mode::Filter, Mode::ReplayFrom] {
        for c in ['q', 'r', 'p', 's', 'S', 'e', 'E', '1', 'R', 'y', 'd'] {
            let a = lookup(mode, &key(c));
            assert!(
                matches!(a, None | Some(Action::Type(_))),
                "{c} does {a:?} in {mode:?}"
            );
        }
    }
    // In the query pane the key starts the editor with itself typed.
    assert_eq!(lookup(Mode::QueryPane, &key('S')), Some(Action::Type('S')));
    assert_eq!(lookup(Mode::QueryPane, &key('q')), Some(Action::Type('q')));
    assert_eq!(lookup(Mode::Edit, &key('q')), None, "text for the editor");
}

#[test]
fn ctrl_c_quits_from_every_mode() {
    for mode in Mode::ALL {
        assert_eq!(lookup(mode, &ctrl('c')), Some(Action::QuitNow), "{mode:?}");
    }
}

#[test]
fn digits_switch_panes_outside_the_query_pane_and_pick_presets_in_the_chooser() {
    assert_eq!(lookup(Mode::Normal, &key('3')), Some(Action::Focus(2)));
    assert_eq!(
        lookup(Mode::Transactions, &key('1')),
        Some(Action::Focus(0))
    );
    assert_eq!(lookup(Mode::QueryPane, &key('3')), Some(Action::Type('3')));
    assert_eq!(lookup(Mode::Presets, &key('5')), Some(Action::Preset(4)));
    assert_eq!(lookup(Mode::Presets, &key('6')), None);
}

#[test]
fn the_main_keys_are_bound() {
    for (c, a) in [
        ('q', A::Quit),
        ('r', A::Reload),
        ('R', A::Replay),
        ('p', A::TogglePause),
        ('/', A::Filter),
        ('?', A::Help),
        ('e', A::Errors),
        ('d', A::DeadLetters),
        ('y', A::Copy),
    ] {
        assert_eq!(lookup(Mode::Normal, &key(c)), Some(a), "{c}");
    }
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(lookup(Mode::Transactions, &enter), Some(A::Open));
    assert_eq!(lookup(Mode::Normal, &enter), None);
    let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(lookup(Mode::Normal, &tab), Some(A::NextPane));
    assert_eq!(lookup(Mode::QueryPane, &tab), Some(A::NextPane));
    let back = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(lookup(Mode::Normal, &back), Some(A::PrevPane));
    assert_eq!(lookup(Mode::ConfirmQuit, &key('q')), Some(A::Confirm));
    assert_eq!(lookup(Mode::ConfirmQuit, &key('x')), None);
}

#[test]
fn every_footer_ends_with_help_where_help_is_bound() {
    for mode in [
        Mode::Normal,
        Mode::Transactions,
        Mode::QueryPane,
        Mode::Detail,
    ] {
        let h = hints(mode);
        assert_eq!(
            h.last().map(|(k, w)| (k.as_str(), *w)),
            Some(("?", "help")),
            "{mode:?}"
        );
    }
}

//! Fuzzes the word lexer: no input may panic, hang or overflow the stack,
//! and the three entry points must agree with each other.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild::containerfile::shell::{EnvList, Lexer};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let word = String::from_utf8_lossy(rest);
    let escape = if flags & 1 == 0 { '\\' } else { '`' };
    let lexer = Lexer::new(escape)
        .raw_quotes(flags & 2 != 0)
        .raw_escapes(flags & 4 != 0)
        .skip_process_quotes(flags & 8 != 0)
        .skip_unset_env(flags & 16 != 0);
    let env = EnvList::from_entries(["A=a b", "EMPTY=", "STAR=*", "X=x/y/z", "PWD=/home"]);
    let single = lexer.process_word(&word, &env);
    let split = lexer.process_words(&word, &env);
    let matches = lexer.process_word_with_matches(&word, &env);
    match (single, split, matches) {
        (Ok(single), Ok(split), Ok(matches)) => {
            assert_eq!(single, matches.result);
            assert_eq!(split, matches.words);
            assert!(matches.matched.is_disjoint(&matches.unmatched));
        }
        (Err(a), Err(b), Err(c)) => {
            assert_eq!(a, b);
            assert_eq!(a, c);
            assert!(a.offset <= word.chars().count());
        }
        (a, b, c) => panic!("entry points disagree: {a:?} / {b:?} / {c:?}"),
    }
});

//! The image cache under faults, driving the real `lab` binary in a
//! workspace of its own: damaged cache entries are found and rebuilt, two
//! `lab images build` at once build once and no reader sees half an output,
//! a killed build leaves nothing that is taken for a build, and a full disk
//! (a real ENOSPC, on a small tmpfs) keeps the previous build and says so.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Tmpfs, Workspace, names_in, skip, text};

const HELLO: &str = "cortex-m/hello";
const BOARD: &str = "mps2-an385";
/// The firmware image and the runtime it is built from.
const HELLO_SOURCES: [&str; 2] = ["cortex-m/hello", "cortex-m/runtime"];

/// `lab images build IMAGE --board BOARD` in `ws`.
fn build(ws: &Workspace, image: &str) -> Output {
    ws.run(&["images", "build", image, "--board", BOARD])
}

/// A build that succeeded and printed `word` (`built` or `cached`).
fn assert_build(out: &Output, word: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(out));
    assert!(stdout.starts_with(&format!("{word:<6} ")), "{}", text(out));
    stdout
}

/// The names in the folder that holds the image's output folder: the output
/// folder, its lock, maybe the log of a failed build, and nothing else (no
/// build folder left behind).
fn assert_no_leftovers(ws: &Workspace, image: &str) {
    let out = ws.out(BOARD, image);
    let name = out.file_name().unwrap().to_str().unwrap().to_owned();
    let names = names_in(out.parent().unwrap());
    let allowed = [name.clone(), format!("{name}.lock"), format!("{name}.log")];
    assert!(
        names.iter().all(|n| allowed.contains(n)),
        "left behind: {names:?}"
    );
}

/// Appends a comment to a C input of the image: a new cache key.
fn edit_input(ws: &Workspace, comment: &str) {
    let main = ws.root().join("images/cortex-m/hello/main.c");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str(&format!("/* {comment} */\n"));
    std::fs::write(main, text).unwrap();
}

#[test]
fn a_damaged_cache_entry_is_found_and_built_again() {
    let ws = Workspace::with_images(&HELLO_SOURCES);
    assert_build(&build(&ws, HELLO), "built");
    let out = ws.out(BOARD, HELLO);
    let elf = out.join("hello.elf");
    let stamp = out.join(".inputs-sha256");
    let good = std::fs::read(&elf).unwrap();
    assert_build(&build(&ws, HELLO), "cached");

    // Each damage, then the next build: it notices, says what it found,
    // builds again, and the output is whole (byte for byte: the build is
    // reproducible).
    type Damage = fn(&Path, &Path);
    let cases: [(&str, Damage, &str); 5] = [
        (
            "truncated",
            |elf, _| {
                std::fs::File::options()
                    .write(true)
                    .open(elf)
                    .unwrap()
                    .set_len(1000)
                    .unwrap()
            },
            "hello.elf has 1000 bytes, the build wrote",
        ),
        (
            "deleted (stamp present, output missing)",
            |elf, _| std::fs::remove_file(elf).unwrap(),
            "hello.elf is missing",
        ),
        (
            "rewritten in place, same size",
            |elf, _| {
                let mut bytes = std::fs::read(elf).unwrap();
                bytes[100..200].fill(0xff);
                std::fs::write(elf, bytes).unwrap();
                // A new time, as any write gives (set, not left to the
                // clock's tick: the test writes within one).
                let later = std::time::SystemTime::now() + Duration::from_secs(60);
                let file = std::fs::File::options().write(true).open(elf).unwrap();
                file.set_modified(later).unwrap();
            },
            "hello.elf changed since the build",
        ),
        (
            "stamp garbage",
            |_, stamp| std::fs::write(stamp, b"\x00\xffgarbage\n").unwrap(),
            "its stamp is not text",
        ),
        (
            "stamp cut short",
            |_, stamp| {
                let text = std::fs::read_to_string(stamp).unwrap();
                std::fs::write(stamp, &text[..text.len() - 30]).unwrap();
            },
            "its stamp is damaged (line 3)",
        ),
    ];
    for (what, damage, reason) in cases {
        damage(&elf, &stamp);
        let stdout = assert_build(&build(&ws, HELLO), "built");
        assert!(
            stdout.contains(&format!("the cached build was unusable: {reason}")),
            "{what}: {stdout}"
        );
        assert_eq!(std::fs::read(&elf).unwrap(), good, "{what}");
        assert_build(&build(&ws, HELLO), "cached");
    }

    // A new time on the same bytes (`touch`, a cache restored from an
    // archive) is no damage: the file is hashed again and still serves.
    let file = std::fs::File::options().write(true).open(&elf).unwrap();
    file.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1))
        .unwrap();
    assert_build(&build(&ws, HELLO), "cached");
    assert_no_leftovers(&ws, HELLO);
}

#[test]
fn a_run_never_boots_a_truncated_image() {
    let ws = Workspace::with_images(&HELLO_SOURCES);
    assert_build(&build(&ws, HELLO), "built");
    let elf = ws.out(BOARD, HELLO).join("hello.elf");
    let good = std::fs::read(&elf).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&elf)
        .unwrap()
        .set_len(good.len() as u64 / 2)
        .unwrap();
    let scenario = common::scenario(
        ws.root(),
        "hello.yaml",
        "version: 1\nname: hello\nboard: mps2-an385\nimage: cortex-m/hello\ntimeout: 30s\n\
         steps:\n  - boot: {}\n  - wait-serial: {match: 'READY', timeout: 10s}\n  \
         - expect-exit: {code: 0, timeout: 10s}\n",
    );
    let out = ws.run(&["run", scenario.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("cortex-m/hello@mps2-an385: built")
            && all.contains("the cached build was unusable: hello.elf has"),
        "{all}"
    );
    assert_eq!(std::fs::read(&elf).unwrap(), good);
}

/// An image whose build writes its 160 KiB output slowly (40 pieces, 20 ms
/// apart) and counts its builds in `count`.
fn slow_image(count: &Path) -> String {
    format!(
        "description: writes its output slowly and counts its builds\n\
         arch: armv7m\n\
         inputs: [image.yaml]\n\
         build:\n  \
         - [sh, -c, 'echo build >> \"$0\"; i=0; while [ $i -lt 40 ]; do \
         head -c 4096 /dev/zero >> \"$1/fw.bin\"; sleep 0.02; i=$((i+1)); done', \
         '{}', '{{out}}']\n\
         output: fw.bin\n",
        count.display()
    )
}

const SLOW_SIZE: u64 = 40 * 4096;

#[test]
fn two_builds_at_once_build_once_and_no_reader_sees_half_an_output() {
    let ws = Workspace::with_images(&[]);
    let count = ws.root().join("count");
    ws.add_image("test/slow", &slow_image(&count));
    let out = ws.out(BOARD, "test/slow");

    // A reader that looks at the output all the time the builds run: the
    // output folder, whenever it is there, holds the stamp and the whole file.
    let done = AtomicBool::new(false);
    let (outputs, looks) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut looks = 0;
            while !done.load(Ordering::Relaxed) {
                if out.is_dir() {
                    let len = std::fs::metadata(out.join("fw.bin")).map(|m| m.len());
                    assert!(
                        out.join(".inputs-sha256").is_file(),
                        "an output folder without its stamp"
                    );
                    assert_eq!(len.ok(), Some(SLOW_SIZE), "half an output is visible");
                    looks += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            looks
        });
        let children: Vec<_> = (0..2)
            .map(|_| {
                ws.lab()
                    .args(["images", "build", "test/slow", "--board", BOARD])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        done.store(true, Ordering::Relaxed);
        (
            outputs,
            reader.join().expect("the reader saw no half output"),
        )
    });
    let mut words: Vec<String> = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", text(o));
            String::from_utf8_lossy(&o.stdout)[..6].trim().to_owned()
        })
        .collect();
    words.sort();
    assert_eq!(words, ["built", "cached"], "built once, found once");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "build\n");
    assert!(looks > 0, "the reader saw the finished output");
    assert_no_leftovers(&ws, "test/slow");
}

#[test]
fn a_killed_build_leaves_nothing_that_is_taken_for_a_build() {
    use std::os::unix::process::CommandExt;

    let ws = Workspace::with_images(&[]);
    let count = ws.root().join("count");
    ws.add_image("test/slow", &slow_image(&count));
    let out = ws.out(BOARD, "test/slow");
    let folder = out.parent().unwrap().to_owned();
    let mut child = ws
        .lab()
        .args(["images", "build", "test/slow", "--board", BOARD])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // Killed (with its build command) half-way through writing its output.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let half_written = || {
        std::fs::read_dir(&folder)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::metadata(e.path().join("fw.bin")).is_ok_and(|m| m.len() >= SLOW_SIZE / 2)
            })
    };
    while !half_written() {
        assert!(
            std::time::Instant::now() < deadline,
            "the build never got going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a half-built output folder is in place");

    // The next build starts over, removes what the killed one left, and
    // builds the whole thing.
    assert_build(&build(&ws, "test/slow"), "built");
    assert_eq!(
        std::fs::metadata(out.join("fw.bin")).unwrap().len(),
        SLOW_SIZE
    );
    assert_no_leftovers(&ws, "test/slow");
}

#[test]
fn a_full_disk_during_a_build_keeps_the_previous_build_and_says_so() {
    let ws = Workspace::with_images(&HELLO_SOURCES);
    // A real ENOSPC: the workspace's build folder is a tmpfs of 256 KiB.
    let disk = match Tmpfs::mount(&ws.root().join("build"), 256 * 1024, false) {
        Ok(disk) => disk,
        Err(reason) => return skip("a_full_disk_during_a_build", &reason),
    };
    assert_build(&build(&ws, HELLO), "built");
    let out = ws.out(BOARD, HELLO);
    let good_elf = std::fs::read(out.join("hello.elf")).unwrap();
    let good_stamp = std::fs::read(out.join(".inputs-sha256")).unwrap();
    let intact = || {
        assert_eq!(std::fs::read(out.join("hello.elf")).unwrap(), good_elf);
        assert_eq!(
            std::fs::read(out.join(".inputs-sha256")).unwrap(),
            good_stamp
        );
        assert_no_leftovers(&ws, HELLO);
    };
    edit_input(&ws, "a new cache key");

    // 12 KiB free: room for the memory map and the log, not for the 32 KiB
    // ELF. The linker hits the full disk.
    let filler = disk.fill("filler", 12 * 1024);
    let failed = build(&ws, HELLO);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    for needed in [
        "building image `cortex-m/hello` for `mps2-an385` failed: no space left on device writing "
            .to_owned(),
        format!("{}", out.join("hello.elf").display()),
        "`arm-none-eabi-gcc`: ".to_owned(),
        "final link failed: No space left on device".to_owned(),
        "free some space there and run `lab images build cortex-m/hello --board mps2-an385` again"
            .to_owned(),
    ] {
        assert!(stderr.contains(&needed), "no `{needed}` in: {stderr}");
    }
    intact();

    // Nothing free: the lab's own first write (the memory map) fails.
    std::fs::remove_file(&filler).unwrap();
    disk.fill("filler", 0);
    let failed = build(&ws, HELLO);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let memory_ld = format!("writing {}", out.join("memory.ld").display());
    assert!(stderr.contains(&memory_ld), "{stderr}");
    assert!(stderr.contains("0 bytes free in "), "{stderr}");
    intact();

    // The previous build still serves its own inputs, full disk or not.
    let main = ws.root().join("images/cortex-m/hello/main.c");
    let edited = std::fs::read_to_string(&main).unwrap();
    std::fs::copy(common::repo().join("images/cortex-m/hello/main.c"), &main).unwrap();
    assert_build(&build(&ws, HELLO), "cached");

    // With space again, the new inputs build.
    std::fs::remove_file(ws.root().join("build/filler")).unwrap();
    std::fs::write(&main, edited).unwrap();
    assert_build(&build(&ws, HELLO), "built");
    assert_no_leftovers(&ws, HELLO);
    drop(disk);
}

#[test]
fn the_images_key_follows_the_inputs_and_nothing_else() {
    let ws = Workspace::with_images(&HELLO_SOURCES);
    let key = || {
        let out = ws.run(&["images", "key"]);
        assert!(out.status.success(), "{}", text(&out));
        let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            key.starts_with("lab-images-") && key.len() == 11 + 64,
            "{key}"
        );
        key
    };
    let before = key();
    // Building changes no input: the key CI restored build/ under still holds.
    assert_build(&build(&ws, HELLO), "built");
    assert_eq!(key(), before);
    edit_input(&ws, "a new input");
    let after = key();
    assert_ne!(after, before);
    assert_eq!(key(), after);
}

//! medic itself as a child process of the demo, and the thread that starts every child.

use super::*;

/// Starts child processes from one thread that lives as long as the demo: a child's
/// parent-death signal fires when the *thread* that forked it exits, so children must not be
/// started from the runtime's short-lived blocking threads.
pub(super) struct Spawner {
    pub(super) tx:
        Mutex<std::sync::mpsc::Sender<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>>,
}

impl Spawner {
    pub(super) fn new() -> Spawner {
        let (tx, rx) =
            std::sync::mpsc::channel::<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>(
            );
        std::thread::Builder::new()
            .name("medic-demo-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("starting the spawner thread");
        Spawner { tx: Mutex::new(tx) }
    }

    pub(super) fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (reply, answer) = std::sync::mpsc::channel();
        let sent = self.tx.lock().unwrap().send((cmd, reply));
        sent.map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
        answer
            .recv()
            .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
    }
}

/// medic itself, `medic run` as a child process.
pub(super) struct MedicProcess {
    pub(super) exe: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) listen: Mutex<Listen>,
    pub(super) child: Mutex<Option<Child>>,
    pub(super) spawner: Spawner,
}

/// Where medic listens. A port the demo picked is held open until medic starts, so that the
/// patients started before medic cannot be given it; and if another process takes it in the
/// moment between, the demo picks again (`repick`) rather than failing.
pub(super) struct Listen {
    pub(super) addr: String,
    reserved: Option<std::net::TcpListener>,
    chosen: bool,
}

impl Listen {
    /// `asked` as given, unless it is absent (127.0.0.1:9099, or any free port if that one is
    /// taken) or names port 0 (any free port on that host).
    pub(super) fn pick(asked: Option<String>) -> anyhow::Result<Listen> {
        let host = match asked {
            Some(a) if !a.ends_with(":0") => {
                return Ok(Listen {
                    addr: a,
                    reserved: None,
                    chosen: false,
                })
            }
            Some(a) => a.trim_end_matches(":0").to_string(),
            None => {
                if let Ok(l) = std::net::TcpListener::bind("127.0.0.1:9099") {
                    return Ok(Listen {
                        addr: "127.0.0.1:9099".into(),
                        reserved: Some(l),
                        chosen: true,
                    });
                }
                "127.0.0.1".to_string()
            }
        };
        let l = std::net::TcpListener::bind(format!("{host}:0"))
            .with_context(|| format!("finding a free port on {host}"))?;
        Ok(Listen {
            addr: l.local_addr()?.to_string(),
            reserved: Some(l),
            chosen: true,
        })
    }

    /// Whether the demo chose the port (and so may choose another).
    pub(super) fn picked(&self) -> bool {
        self.chosen
    }
}

impl MedicProcess {
    pub(super) fn listen(&self) -> String {
        self.listen.lock().unwrap().addr.clone()
    }

    /// Picks another free port on the same host, after medic found its port taken.
    pub(super) fn repick(&self) -> anyhow::Result<String> {
        let mut l = self.listen.lock().unwrap();
        let host = l
            .addr
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h)
            .to_string();
        *l = Listen::pick(Some(format!("{host}:0")))?;
        Ok(l.addr.clone())
    }

    /// Whether medic's log says its port was taken, after it exited.
    pub(super) fn port_was_taken(&self) -> bool {
        std::fs::read_to_string(self.dir.join("medic.log"))
            .is_ok_and(|log| log.contains("Address already in use"))
    }

    pub(super) fn start(&self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("medic.log"))?;
        let listen = {
            // Released the moment before medic binds it.
            let mut l = self.listen.lock().unwrap();
            drop(l.reserved.take());
            l.addr.clone()
        };
        let mut cmd = Command::new(&self.exe);
        // medic dies with the demo however the demo ends (terminal closed, SIGTERM, even
        // SIGKILL): the kernel sends it SIGTERM when the thread that started it exits — the
        // spawner's, which lives as long as the demo.
        // SAFETY: prctl is async-signal-safe and touches only the child's own settings.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        cmd.arg("run")
            .arg("--config")
            .arg(self.dir.join("medic.yml"))
            .arg("--listen")
            .arg(&listen)
            .arg("--data")
            .arg(self.dir.join("data"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = self
            .spawner
            .spawn(cmd)
            .with_context(|| format!("starting {} run", self.exe.display()))?;
        *self.child.lock().unwrap() = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crash would.
    pub(super) fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait.
    pub(super) fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(super) fn exited(&self) -> Option<String> {
        let mut g = self.child.lock().unwrap();
        match g.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(st))) => Some(st.to_string()),
            _ => None,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen())
    }
}

impl Drop for MedicProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

